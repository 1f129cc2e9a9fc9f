"""A forced interleaving: the server runs a chosen command, then its connection dies
before the client reads the reply (the reply in flight is lost).

Real parts: the backend's own pool makes these connections to the real redis-server; a
second redis-py client waits until the command's write is visible, then CLIENT KILLs
the connection, whose reply bytes are then read and dropped, so the client's next read
meets the closed connection (redis-py raises ConnectionError, as for any lost reply).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis

_WAIT = 2.0  # bounded wait for the command's effect to be visible


def _name(arg: Any) -> str:
    return (arg.decode() if isinstance(arg, bytes) else str(arg)).upper()


class LostReply:
    """Loses the reply of the next armed command (by name) on ``key``: once per arm()."""

    def __init__(self, url: str, key: str) -> None:
        self.raw = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self.key = key.encode()
        self.names: set[str] = set()
        self.changes = True  # wait until the key's bytes change (a write) before killing
        self.fired = 0
        self.seen: list[str] = []  # every command sent on the key, in order

    def arm(self, *names: str, changes: bool = True) -> None:
        """Lose the reply of the next command named one of ``names`` on the key."""
        self.names = {n.upper() for n in names}
        self.changes = changes

    def close(self) -> None:
        """Close the killer's own connection."""
        self.raw.close()

    def _wants(self, args: tuple[Any, ...]) -> Any:
        """The key's bytes before the command when it is to be lost; else False."""
        keyed = any(isinstance(a, (bytes, str)) and
                    (a.encode() if isinstance(a, str) else a) == self.key for a in args[1:])
        if not keyed:
            return False
        name = _name(args[0])
        self.seen.append(name)
        if name not in self.names:
            return False
        self.names = set()  # once per arm
        return [self.raw.get(self.key)]

    def _ran(self, before: list[Any], deadline: float) -> bool:
        """Whether the armed command's write is visible (asserts it is, by ``deadline``)."""
        if not self.changes or self.raw.get(self.key) != before[0]:
            return True
        assert time.monotonic() < deadline, f"the armed command never ran: {self.seen}"
        return False

    def _kill(self, addr: tuple[str, int]) -> None:
        assert self.raw.client_kill(f"{addr[0]}:{addr[1]}")
        self.fired += 1

    def install(self, pool: Any) -> None:
        """Make ``pool``'s new connections lose armed replies (before its first command)."""
        trap = self
        base = pool.connection_class
        if asyncio.iscoroutinefunction(base.read_response):
            class AsyncKiller(base):  # type: ignore[misc,valid-type]
                _before: Any = None

                _pending: Any = None

                async def send_command(self, *args: Any, **kwargs: Any) -> None:
                    self._pending = self._pending or trap._wants(args)
                    await super().send_command(*args, **kwargs)

                def pack_command(self, *args: Any) -> Any:  # the cluster's way to send
                    self._pending = self._pending or trap._wants(args)
                    return super().pack_command(*args)

                async def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
                    # Armed once sent: the connect's own handshake (within) reads first.
                    pending, self._pending = self._pending, None
                    await super().send_packed_command(*args, **kwargs)
                    self._before = pending

                async def read_response(self, *args: Any, **kwargs: Any) -> Any:
                    before, self._before = self._before, None
                    if before:
                        deadline = time.monotonic() + _WAIT
                        while not trap._ran(before, deadline):
                            await asyncio.sleep(0.001)  # the loop may still be sending it
                        trap._kill(self._writer.get_extra_info("sockname"))
                        while await asyncio.wait_for(self._reader.read(65536), _WAIT):
                            pass  # the reply in flight: dropped, up to the server's close
                    return await super().read_response(*args, **kwargs)

            pool.connection_class = AsyncKiller
            return

        class Killer(base):  # type: ignore[misc,valid-type]
            _before: Any = None

            _pending: Any = None

            def send_command(self, *args: Any, **kwargs: Any) -> None:
                self._pending = self._pending or trap._wants(args)
                super().send_command(*args, **kwargs)

            def pack_command(self, *args: Any) -> Any:  # the cluster's way to send
                self._pending = self._pending or trap._wants(args)
                return super().pack_command(*args)

            def send_packed_command(self, *args: Any, **kwargs: Any) -> None:
                # Armed once sent: the connect's own handshake (within) reads first.
                pending, self._pending = self._pending, None
                super().send_packed_command(*args, **kwargs)
                self._before = pending

            def read_response(self, *args: Any, **kwargs: Any) -> Any:
                before, self._before = self._before, None
                if before:
                    deadline = time.monotonic() + _WAIT
                    while not trap._ran(before, deadline):
                        time.sleep(0.001)
                    trap._kill(self._sock.getsockname())
                    self._sock.settimeout(_WAIT)
                    while self._sock.recv(65536):
                        pass  # the reply in flight: dropped, up to the server's close
                return super().read_response(*args, **kwargs)

        pool.connection_class = Killer
