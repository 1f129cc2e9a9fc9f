"""A small file-backed queue of invalidations that could not reach Redis.

Each process appends the keys it could not delete (or a namespace clear) to a
file of its own, holding an exclusive ``flock`` on it while it lives. When the
process exits (or is killed), the lock goes with it, and any other process of
the same Redis location and namespace (or ``cachekit-web pending replay``) can
take the file over and replay it. Nothing secret is written: only cache keys.

Nothing at the spool's path is trusted: both folders (the root and the namespace's)
must be owned by this user and not writable by group or others, and no symlink is
followed (``O_NOFOLLOW`` on each, files opened relative to the checked folder);
otherwise the spool is not used (``E080``). Orphan files are opened without blocking
and must be regular files; only their lines that delete a key of this namespace (or
clear it) are replayed, and a file with anything else is set aside, renamed with a
``.bad`` suffix (``E082``), after its valid lines were replayed. A spool that cannot be
written (a folder that cannot be made, no permission, a full disk) never fails a cache
call: the invalidation stays in memory, the failure is counted and logged (``E081``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import secrets
import stat
import tempfile
import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..registry import reset_in_forked_child

_SUFFIX = ".spool"
_ASIDE = ".bad"  # a file set aside: never scanned again, kept for a person to look at
_MAX_LINE = 64 * 1024  # longer than any key: a line beyond it is not a record
_MAX_KEYS = 1_000_000  # more keys than that in one file: clear the namespace instead
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

log = logging.getLogger("cachekit_web")


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


def _lines(fd: int) -> Iterator[bytes | None]:
    """Each complete line of a file (read with pread: its offset is left alone); None for
    one too long to be a record. A last line without its newline (torn by a crash) is
    dropped without counting as bad."""
    offset = 0
    rest = b""
    skipping = False
    while True:
        chunk = os.pread(fd, 65536, offset)
        if not chunk:
            return
        offset += len(chunk)
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield None if skipping else part
            skipping = False
        if len(rest) > _MAX_LINE:
            rest, skipping = b"", True


def _read(fd: int, prefix: str) -> tuple[Batch, bool]:
    """The records of a spool file and whether it held anything else (then it is "bad").

    Only deletes of keys under ``prefix`` (the namespace) and clears count."""
    keys: dict[str, None] = {}
    clear = bad = False
    for line in _lines(fd):
        try:
            record = None if line is None else json.loads(line.decode("utf-8"))
        except (ValueError, RecursionError):  # not UTF-8 (a ValueError), not JSON, too deep
            record = None
        if record == ["C"]:
            clear = True
            keys.clear()
        elif (isinstance(record, list) and len(record) == 2 and record[0] == "D"
              and isinstance(record[1], str) and record[1].startswith(prefix)
              and len(record[1]) > len(prefix)):
            keys[record[1]] = None
            if len(keys) > _MAX_KEYS:  # too many to hold one by one, as PendingDeletes does
                keys.clear()
                clear = True
        else:
            bad = True
    return Batch(list(keys), clear), bad


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class _Refused(OSError):
    """The spool folder is not safely this user's (already logged with E080)."""


class Spool:
    """This process's spool file, and access to the files other processes left behind."""

    def __init__(self, directory: str | os.PathLike[str], prefix: str = "") -> None:
        _SPOOLS.add(self)
        self.directory = Path(directory)
        self.prefix = prefix  # only keys under it are replayed from other processes' files
        self.failures: Counter[str] = Counter()  # E080 / E081 / E082: how often, by code
        self._logged: set[str] = set()
        self._count_lock = threading.Lock()
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._path: Path | None = None
        self._pid = 0

    def _trouble(self, code: str, message: str) -> None:
        """Count a spool failure; the first of each code is logged (WARNING, with the code)."""
        with self._count_lock:
            self.failures[code] += 1
            if code in self._logged:
                return
            self._logged.add(code)
        log.warning("[%s] %s", code, message, extra={"cachekit_code": code})

    def _release_inherited(self) -> None:
        """In a forked child: close the parent's file (keeping it would keep its lock)."""
        if self._fd is not None and self._pid != os.getpid():
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = self._path = None

    def _safe(self, fd: int, path: Path) -> bool:
        st = os.fstat(fd)
        if st.st_uid == os.getuid() and not st.st_mode & 0o022:
            return True
        self._trouble("E080", f"spool folder {path} is not owned by this user or is writable "
                      "by others: not used (invalidations are kept in memory only)")
        return False

    def _open_folder(self, path: Path, parent: int | None, create: bool) -> int | None:
        """A descriptor of ``path`` (its last part, relative to ``parent`` if given), never
        through a symlink; None if it does not exist and ``create`` is false. Raises
        _Refused (logged) if it is not safely ours, OSError if it cannot be made or opened."""
        name: str | Path = path.name if parent is not None else path
        if create:
            try:
                if parent is None:
                    path.mkdir(parents=True, exist_ok=True, mode=0o700)
                else:
                    os.mkdir(name, 0o700, dir_fd=parent)
            except FileExistsError:
                pass  # a symlink or a file by that name is caught by the open below
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if create:
                raise
            return None
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(path):
                self._trouble("E080", f"spool folder {path} is a symlink: not followed, "
                              "not used (invalidations are kept in memory only)")
                raise _Refused(str(path)) from None
            raise
        if not self._safe(fd, path):
            os.close(fd)
            raise _Refused(str(path))
        return fd

    @contextmanager
    def _folder(self, create: bool = False) -> Iterator[int | None]:
        """A checked descriptor of the spool folder (None if it does not exist yet)."""
        root = self._open_folder(self.directory.parent, None, create)
        if root is None:
            yield None
            return
        try:
            fd = self._open_folder(self.directory, root, create)
        finally:
            os.close(root)
        try:
            yield fd
        finally:
            if fd is not None:
                os.close(fd)

    def _own(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._release_inherited()  # a fork done in C: no hook ran
            with self._folder(create=True) as folder:
                name = f"{os.getpid()}-{secrets.token_hex(4)}"
                # Locked under a name no one scans, then renamed: never visible unlocked.
                hidden = f".{name}.new"
                fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_APPEND
                             | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=folder)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # held while this process lives
                    os.rename(hidden, f"{name}{_SUFFIX}", src_dir_fd=folder,
                              dst_dir_fd=folder)
                except BaseException:
                    os.close(fd)
                    with contextlib.suppress(OSError):
                        os.unlink(hidden, dir_fd=folder)
                    raise
            self._fd, self._pid = fd, os.getpid()
            self._path = self.directory / f"{name}{_SUFFIX}"
        return self._fd

    def _write(self, lines: list[str], truncate: bool) -> None:
        """Write ``lines`` (after emptying the file if ``truncate``); a failure is counted
        and logged (E080 refused folder, E081 anything else), never raised."""
        fd = None
        size = 0
        try:
            fd = self._own()
            size = os.fstat(fd).st_size
            if truncate:
                os.ftruncate(fd, 0)
            _write_all(fd, "".join(lines).encode())
        except OSError as exc:
            if fd is not None and not truncate:  # no torn line before the next append
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
            if not isinstance(exc, _Refused):  # a refused folder was logged as E080
                self._trouble("E081", f"cannot write the spool under {self.directory} "
                              f"({type(exc).__name__}: {exc.strerror or exc}); "
                              "invalidations are kept in memory only")

    @property
    def path(self) -> Path | None:
        """This process's spool file, if it has one."""
        return self._path if self._pid == os.getpid() else None

    def append(self, keys: Iterable[str], clear: bool = False) -> None:
        """Record keys to delete (or a namespace clear) durably enough to survive this
        process; a failure is counted and logged (E080/E081), never raised."""
        lines = ['["C"]\n'] if clear else []
        lines += [json.dumps(["D", k]) + "\n" for k in keys]
        if not lines:
            return
        with self._lock:
            self._write(lines, truncate=False)

    def rewrite(self, keys: list[str], clear: bool) -> None:
        """Replace this process's records with exactly these (after some of them landed)."""
        with self._lock:
            if (self._fd is None or self._pid != os.getpid()) and not (clear or keys):
                return  # nothing was ever spooled here and nothing is pending
            lines = ['["C"]\n'] if clear else []
            self._write(lines + [json.dumps(["D", k]) + "\n" for k in keys], truncate=True)

    def pending(self) -> Batch:
        """What this process's file holds."""
        with self._lock:
            if self._fd is None or self._pid != os.getpid():
                return Batch([], False)
            try:
                return _read(self._fd, "")[0]
            except OSError as exc:
                self._trouble("E081", f"cannot read this process's spool file "
                              f"({type(exc).__name__})")
                return Batch([], False)

    def orphans(self) -> list[Path]:
        """Spool files of other processes (maybe alive: see adopt), oldest first; none if the
        folder is missing, unusable or refused (counted and logged, never raised)."""
        own = self.path
        found = []
        try:
            with self._folder() as folder:
                if folder is None:
                    return []
                for name in os.listdir(folder):
                    if not name.endswith(_SUFFIX) or (own is not None and name == own.name):
                        continue
                    try:
                        mtime = os.stat(name, dir_fd=folder, follow_symlinks=False).st_mtime
                    except FileNotFoundError:
                        continue
                    found.append((mtime, name))
        except _Refused:
            return []
        except OSError as exc:
            self._trouble("E081", f"cannot list the spool folder {self.directory} "
                          f"({type(exc).__name__}: {exc.strerror or exc})")
            return []
        return [self.directory / name for _, name in sorted(found)]

    def _set_aside(self, folder: int, name: str, why: str) -> None:
        """Rename a bad orphan out of the scan (kept for a person), logged with E082."""
        aside = f"{name}{_ASIDE}"
        try:
            os.rename(name, aside, src_dir_fd=folder, dst_dir_fd=folder)
        except FileNotFoundError:
            return  # another reader set it aside first
        except OSError as exc:
            why += f"; it could not be renamed ({exc.strerror or exc})"
        self._trouble("E082", f"spool file {self.directory / name} set aside as {aside}: {why}")

    @contextmanager
    def _open_orphan(self, path: Path, lock: bool) -> Iterator[tuple[int, int] | None]:
        """(folder, file) descriptors of an orphan: a regular file of this user, opened
        without following a symlink or blocking (a FIFO); locked if ``lock``. None if it is
        gone, still held by its owner, or not a plain file (then it is set aside)."""
        try:
            with self._folder() as folder:
                if folder is None:
                    yield None
                    return
                try:
                    fd = os.open(path.name, _FILE_FLAGS, dir_fd=folder)
                except FileNotFoundError:
                    yield None
                    return
                except OSError as exc:  # a symlink (ELOOP) or something that cannot be read
                    self._set_aside(folder, path.name, "cannot be opened as a plain file "
                                    f"({exc.strerror or exc})")
                    yield None
                    return
                try:
                    st = os.fstat(fd)
                    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
                        self._set_aside(folder, path.name, "not a plain file of this user")
                        yield None
                        return
                    if lock:
                        try:
                            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        except BlockingIOError:
                            yield None  # its owner still lives
                            return
                        try:  # replayed and removed (or replaced) by another process meanwhile
                            now = os.stat(path.name, dir_fd=folder, follow_symlinks=False)
                        except FileNotFoundError:
                            yield None
                            return
                        if (now.st_ino, now.st_dev) != (st.st_ino, st.st_dev):
                            yield None
                            return
                    yield folder, fd
                finally:
                    os.close(fd)
        except _Refused:
            yield None

    @contextmanager
    def adopt(self, path: Path) -> Iterator[Batch | None]:
        """Lock another process's file and read it; None if its owner still lives.

        The caller replays the batch inside the ``with``; the file is then deleted (set
        aside if it held anything but records of this namespace), only when the block
        finishes without an exception.
        """
        yielded = False
        try:
            with self._open_orphan(path, lock=True) as found:
                batch, bad = (None, False) if found is None else _read(found[1], self.prefix)
                yielded = True
                yield batch
                if found is None:
                    return
                if bad:
                    self._set_aside(found[0], path.name, "it holds lines that are not "
                                    f"invalidations of this namespace ({len(batch or ())} "
                                    "valid ones replayed)")
                else:
                    try:
                        os.unlink(path.name, dir_fd=found[0])
                    except FileNotFoundError:
                        pass
                    except OSError as exc:
                        self._trouble("E081", f"cannot remove the replayed spool file {path} "
                                      f"({exc.strerror or exc})")
        except OSError as exc:
            if yielded:  # the caller's own failure: not ours to hide
                raise
            self._trouble("E081", f"cannot read the spool file {path} ({type(exc).__name__})")
            yield None

    def depth(self) -> int:
        """How many invalidations this process and dead ones have spooled."""
        total = len(self.pending())
        for path in self.orphans():
            with self.adopt_peek(path) as batch:
                total += len(batch) if batch is not None else 0
        return total

    @contextmanager
    def adopt_peek(self, path: Path) -> Iterator[Batch | None]:
        """Read a spool file without taking it over (for reports); None if unreadable."""
        batch: Batch | None = None
        if path == self.path:
            batch = self.pending()
        else:
            try:
                with self._open_orphan(path, lock=False) as found:
                    if found is not None:
                        batch = _read(found[1], self.prefix)[0]
            except OSError as exc:
                self._trouble("E081", f"cannot read the spool file {path} "
                              f"({type(exc).__name__})")
        yield batch


# A child forked by Python lets go of its parent's spool files at once (their locks are
# shared), so that they can be taken over when the parent dies, even while it lives.
_SPOOLS: weakref.WeakSet[Spool] = reset_in_forked_child(Spool._release_inherited)
