"""Just enough RESP for the tracking connection: read one reply, write one command."""

from __future__ import annotations

from typing import Any


class Incomplete(Exception):
    """The buffer holds part of a reply; wait for more bytes."""


class TrackingError(Exception):
    """The tracking connection said something unexpected (it is then dropped)."""


def parse(buf: bytes | bytearray, pos: int = 0) -> tuple[Any, int]:
    """One RESP2/RESP3 reply from ``buf`` at ``pos``: (value, next position); raises
    Incomplete when the buffer ends first."""
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise Incomplete
    kind, line = buf[pos:pos + 1], bytes(buf[pos + 1:end])
    pos = end + 2
    if kind in (b"*", b">", b"~"):  # array, push, set
        n = int(line)
        if n < 0:
            return None, pos
        items = []
        for _ in range(n):
            item, pos = parse(buf, pos)
            items.append(item)
        return items, pos
    if kind == b"$":
        n = int(line)
        if n < 0:
            return None, pos
        if len(buf) < pos + n + 2:
            raise Incomplete
        return bytes(buf[pos:pos + n]), pos + n + 2
    if kind == b"+":
        return line, pos
    if kind == b":":
        return int(line), pos
    if kind == b"_":
        return None, pos
    if kind == b"-":
        raise TrackingError("error reply on the tracking connection")
    raise TrackingError("unexpected reply type on the tracking connection")


def command(*args: bytes | str | int) -> bytes:
    """One command in RESP form."""
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def server_version(info: Any) -> tuple[int, ...]:
    """The (major, minor) of a redis_version string, INFO dict or INFO text."""
    if isinstance(info, dict):
        info = str(info.get("redis_version", "0"))
    if isinstance(info, bytes):
        info = info.decode("ascii", "replace")
    text = str(info)
    for line in text.splitlines():
        if line.startswith("redis_version:"):
            text = line.split(":", 1)[1]
            break
    nums = []
    for part in text.strip().split(".")[:2]:
        digits = "".join(ch for ch in part if ch.isdigit())
        nums.append(int(digits or 0))
    return tuple(nums)
