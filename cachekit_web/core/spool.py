"""A small file-backed queue of invalidations that could not reach Redis.

Each process appends the keys it could not delete (or a namespace clear) to a
file of its own, holding an exclusive ``flock`` on it while it lives. When the
process exits (or is killed), the lock goes with it, and any other process of
the same Redis location and namespace (or ``cachekit-web pending replay``) can
take the file over and replay it. Nothing secret is written: only cache keys.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import secrets
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

_SUFFIX = ".spool"


def default_directory() -> Path:
    """The per-user spool root used when SPOOL_DIR is empty."""
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return Path(tempfile.gettempdir()) / f"cachekit-spool-{uid}"


def scope_name(location: str, namespace: str) -> str:
    """The spool folder for one Redis location (credentials already redacted) and namespace."""
    digest = hashlib.sha256(f"{location}\0{namespace}".encode()).hexdigest()[:20]
    return f"{namespace[:40]}-{digest}"


@dataclass
class Batch:
    """What one spool file holds: keys to delete, and whether the namespace must be cleared."""

    keys: list[str]
    clear: bool

    def __len__(self) -> int:
        return len(self.keys) + (1 if self.clear else 0)


def _read(handle: IO[str]) -> Batch:
    handle.seek(0)
    keys: dict[str, None] = {}
    clear = False
    for line in handle:
        try:
            record = json.loads(line)
        except ValueError:  # a torn last line from a crash: everything before it counts
            continue
        if record == ["C"]:
            clear = True
            keys.clear()
        elif isinstance(record, list) and len(record) == 2 and record[0] == "D":
            keys[str(record[1])] = None
    return Batch(list(keys), clear)


_SPOOLS: weakref.WeakSet[Spool] = weakref.WeakSet()


def _drop_inherited_files() -> None:
    # A child forked by Python lets go of its parent's spool files at once (their locks are
    # shared), so that they can be taken over when the parent dies, even while it lives.
    for spool in list(_SPOOLS):
        spool._release_inherited()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_drop_inherited_files)


class Spool:
    """This process's spool file, and access to the files other processes left behind."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        _SPOOLS.add(self)
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._handle: IO[str] | None = None
        self._path: Path | None = None
        self._pid = 0

    def _release_inherited(self) -> None:
        """In a forked child: close the parent's file (keeping it would keep its lock)."""
        if self._handle is not None and self._pid != os.getpid():
            with contextlib.suppress(OSError):
                self._handle.close()
            self._handle = self._path = None

    def _own(self) -> IO[str]:
        if self._handle is None or self._pid != os.getpid():
            self._release_inherited()  # a fork done in C: no hook ran
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            name = f"{os.getpid()}-{secrets.token_hex(4)}"
            # Locked under a name no one scans, then renamed: never visible unlocked.
            hidden = self.directory / f".{name}.new"
            fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
            handle = os.fdopen(fd, "r+", encoding="utf-8")
            fcntl.flock(handle, fcntl.LOCK_EX)  # held while this process lives
            path = self.directory / f"{name}{_SUFFIX}"
            os.rename(hidden, path)
            self._handle, self._path, self._pid = handle, path, os.getpid()
        return self._handle

    @property
    def path(self) -> Path | None:
        """This process's spool file, if it has one."""
        return self._path if self._pid == os.getpid() else None

    def append(self, keys: Iterable[str], clear: bool = False) -> None:
        """Record keys to delete (or a namespace clear) durably enough to survive this process."""
        lines = ['["C"]\n'] if clear else []
        lines += [json.dumps(["D", k]) + "\n" for k in keys]
        if not lines:
            return
        with self._lock:
            handle = self._own()
            handle.writelines(lines)
            handle.flush()

    def rewrite(self, keys: list[str], clear: bool) -> None:
        """Replace this process's records with exactly these (after some of them landed)."""
        with self._lock:
            if (self._handle is None or self._pid != os.getpid()) and not (clear or keys):
                return  # nothing was ever spooled here and nothing is pending
            handle = self._own()
            handle.truncate(0)
            lines = ['["C"]\n'] if clear else []
            handle.writelines(lines + [json.dumps(["D", k]) + "\n" for k in keys])
            handle.flush()

    def pending(self) -> Batch:
        """What this process's file holds."""
        with self._lock:
            if self._handle is None or self._pid != os.getpid():
                return Batch([], False)
            return _read(self._handle)

    def orphans(self) -> list[Path]:
        """Spool files of processes that are gone (their lock is free), oldest first."""
        try:
            found = [p for p in self.directory.iterdir() if p.suffix == _SUFFIX]
        except FileNotFoundError:
            return []
        own = self.path
        return sorted((p for p in found if p != own), key=lambda p: p.stat().st_mtime
                      if p.exists() else 0.0)

    @contextmanager
    def adopt(self, path: Path) -> Iterator[Batch | None]:
        """Lock another process's file and read it; None if its owner still lives.

        The caller replays the batch inside the ``with``; the file is deleted only
        when the block finishes without an exception.
        """
        try:
            handle = open(path, "r+", encoding="utf-8")  # noqa: SIM115
        except FileNotFoundError:
            yield None
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield None
                return
            if not path.exists():  # replayed and removed by another process meanwhile
                yield None
                return
            yield _read(handle)
            path.unlink(missing_ok=True)

    def depth(self) -> int:
        """How many invalidations this process and dead ones have spooled."""
        total = len(self.pending())
        for path in self.orphans():
            with self.adopt_peek(path) as batch:
                total += len(batch) if batch is not None else 0
        return total

    @contextmanager
    def adopt_peek(self, path: Path) -> Iterator[Batch | None]:
        """Read an orphan without taking it over (for reports)."""
        try:
            with open(path, encoding="utf-8") as handle:
                yield _read(handle)
        except FileNotFoundError:
            yield None
