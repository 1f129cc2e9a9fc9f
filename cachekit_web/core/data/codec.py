"""Value <-> bytes: msgpack with extension types, compression, sealed frames.

Frame layout (all integers big-endian)::

    b"CK" | version=2 (1) | flags (1) | key id (4) | expires_at: float64 |
    [fresh_until: float64] | body

``expires_at`` is the absolute expiry (Unix seconds, 0.0 = never) and
``fresh_until`` the end of the fresh period of a stale-while-revalidate entry.
The whole header is authenticated together with the full cache key (AEAD
associated data, or HMAC input), so a frame cannot be moved to another key or
have its flags or times changed without failing with E003, and a frame written
back after its expiry is refused (E021): it is a miss. Version 1 frames (the
same header without ``expires_at``) are still read.

Counters: under a key the codec calls plain (every key with ``raw_ints``, the
unauthenticated mode; else the keys ``plain_keys`` matches, from PLAIN_COUNTERS), a
plain 64-bit int is stored as its decimal digits, a Redis integer that INCRBY
updates in one server-side step, and such digits read back as an int. They are
not sealed (see docs/security.md); under any other key digits are not a frame
(E021, a miss). Frames always start with ``b"CK"``, digits never.

Hostile-data bounds, checked on write (E020/E022) and on read (E021, a miss):
tuples, sets, frozensets, datetimes and times nest at most ``MAX_NESTING``
levels inside one another (each level is decoded by a nested msgpack call on
the C stack); a compressed payload inflates to at most MAX_VALUE_SIZE bytes;
with PICKLE_FALLBACK off, a frame flagged as pickle is never unpickled.
"""

from __future__ import annotations

import datetime as dt
import pickle
import re
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple, cast

import msgpack

from ..errors import (
    CachekitError,
    ConfigurationError,
    DeserializationError,
    IntegrityError,
    SerializationError,
    ValueTooLargeError,
)
from .crypto import NONCE_SIZE, KeyRing
from .ints import is_int64, redis_int

try:  # zoneinfo is 3.9+, but tzdata may be absent on some systems
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover
    ZoneInfo = None  # type: ignore[assignment,misc]

MAGIC = b"CK"
VERSION = 2
VERSION_1 = 1  # no expires_at field; still read
F_ENCRYPTED = 0x01
F_SIGNED = 0x02
F_PICKLE = 0x04
F_ZLIB = 0x08
F_FRESH = 0x10

_HEAD = struct.Struct(">2sBB4s")
_HEAD2 = struct.Struct(">2sBB4sd")
_FRESH = struct.Struct(">d")
HEADER_SIZE = _HEAD.size  # the part shared by every version: magic, version, flags, key id
HEADER2_SIZE = _HEAD2.size
_COMMON = MAGIC + bytes((VERSION, F_ENCRYPTED))  # values_into: the common frame's first bytes
_BODY = HEADER2_SIZE + NONCE_SIZE  # where an encrypted version 2 frame's ciphertext starts

MAX_NESTING = 16
"""How deeply tuples, sets, frozensets, datetimes and times may nest inside one another.

Each level costs about 40 KiB of C stack when read (a nested msgpack call): 16
levels fit a 1 MiB thread stack with room to spare. Lists and dicts between them
do not count (msgpack bounds those itself)."""
_NEST = threading.local()  # per-thread nesting level while packing or unpacking

# msgpack extension type codes; part of the stored format, never renumber.
(X_TUPLE, X_SET, X_FROZENSET, X_DATETIME, X_DATE, X_TIME, X_TIMEDELTA, X_DECIMAL, X_UUID,
 X_BIGINT) = range(1, 11)
X_PAGE = 11  # a cached HTTP response (core.web.StoredPage): pages are known by type, not shape


class Extension(NamedTuple):
    """A type another module registered: its code, and how it becomes fields and back."""

    code: int
    kind: type
    name: str  # in errors: "malformed stored <name>"
    fields: Callable[[Any], list[Any]]
    build: Callable[[Any], Any]  # None if the fields are malformed


_EXTENSIONS: dict[type, Extension] = {}
_BY_CODE: dict[int, Extension] = {}
_SHARED: set[type] = set()  # registered kinds whose values are immutable


def register_extension(kind: type, code: int, name: str, fields: Callable[[Any], list[Any]],
                       build: Callable[[Any], Any], *, immutable: bool = False) -> None:
    """Store values of exactly ``kind`` as extension ``code`` (``core.web`` registers pages).

    ``fields(value)`` gives what is stored (msgpack types); ``build(fields)`` makes the
    value again, or returns None when the stored fields are malformed (E021).
    ``immutable``: one decoded value may be handed to every reader of the same frame.
    """
    known = _BY_CODE.get(code)
    if code <= X_BIGINT or (known is not None and known.kind is not kind):
        raise ValueError(f"extension code {code} is taken")
    _EXTENSIONS[kind] = _BY_CODE[code] = Extension(code, kind, name, fields, build)
    if immutable:
        _SHARED.add(kind)


SLOW: Any = object()  # Codec.value_of: this frame needs the general decode
# Opened frames kept per codec for reuse (see Codec._opened_frames): at most this many,
# each at most this many bytes (frame plus inflated payload): 4 MiB at worst.
_REUSE_MAX_ENTRIES = 64
REUSE_MAX_BYTES = 64 * 1024


class Entry(NamedTuple):
    """A decoded value, when it goes stale (stale-while-revalidate) and when it expires."""

    value: Any
    fresh_until: float | None = None
    expires_at: float | None = None


class _TooDeep(Exception):
    """A value nests deeper than MAX_NESTING (raised through msgpack's default hook)."""


def _nested(step: Callable[[Any], Any], data: Any, too_deep: Callable[[], Exception]) -> Any:
    """``step(data)`` one nesting level deeper; ``too_deep()`` is raised past MAX_NESTING."""
    level = getattr(_NEST, "level", 0)
    if level >= MAX_NESTING:
        raise too_deep()
    _NEST.level = level + 1
    try:
        return step(data)
    finally:
        _NEST.level = level


def _stored_too_deep() -> Exception:
    return DeserializationError(f"stored value nests deeper than {MAX_NESTING} levels",
                                code="E021")


def _pack_nested(obj: Any) -> bytes:
    return cast(bytes, _nested(_pack, obj, _TooDeep))


def _unpack_nested(data: bytes) -> Any:
    return _nested(_unpack, data, _stored_too_deep)


def _pack(obj: Any) -> bytes:
    return cast(bytes, msgpack.packb(obj, default=_default, strict_types=True, use_bin_type=True))


def _tz_encode(tz: dt.tzinfo | None) -> Any:
    if tz is None:
        return None
    if isinstance(tz, dt.timezone):
        offset = tz.utcoffset(None)
        micros = offset // dt.timedelta(microseconds=1)
        name = tz.tzname(None)
        # A named fixed offset (timezone(+1h, "CET")) keeps its name; unnamed ones stay an int.
        return micros if name == dt.timezone(offset).tzname(None) else [micros, name]
    if ZoneInfo is not None and isinstance(tz, ZoneInfo) and tz.key:
        return tz.key
    raise TypeError(f"unsupported tzinfo {type(tz).__name__}")


def _tz_decode(data: Any) -> dt.tzinfo | None:
    if data is None:
        return None
    if isinstance(data, int):
        return dt.timezone(dt.timedelta(microseconds=data))
    if isinstance(data, list):
        return dt.timezone(dt.timedelta(microseconds=data[0]), data[1])
    if ZoneInfo is None:  # pragma: no cover
        raise DeserializationError("zoneinfo unavailable", code="E021")
    return ZoneInfo(data)


def _default(obj: Any) -> msgpack.ExtType:
    t = type(obj)
    if t is tuple:
        return msgpack.ExtType(X_TUPLE, _pack_nested(list(obj)))
    if t is set:
        return msgpack.ExtType(X_SET, _pack_nested(list(obj)))
    if t is frozenset:
        return msgpack.ExtType(X_FROZENSET, _pack_nested(list(obj)))
    if t is dt.datetime:
        return msgpack.ExtType(X_DATETIME, _pack_nested([
            obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
            obj.microsecond, obj.fold, _tz_encode(obj.tzinfo),
        ]))
    if t is dt.date:
        return msgpack.ExtType(X_DATE, _pack_nested([obj.year, obj.month, obj.day]))
    if t is dt.time:
        return msgpack.ExtType(X_TIME, _pack_nested([
            obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold,
            _tz_encode(obj.tzinfo),
        ]))
    if t is dt.timedelta:
        return msgpack.ExtType(X_TIMEDELTA, _pack_nested([obj.days, obj.seconds, obj.microseconds]))
    if t is Decimal:
        return msgpack.ExtType(X_DECIMAL, str(obj).encode())
    if t is uuid.UUID:
        return msgpack.ExtType(X_UUID, obj.bytes)
    if t is int:  # only reached for integers outside msgpack's 64-bit range
        return msgpack.ExtType(X_BIGINT, str(obj).encode())
    ext = _EXTENSIONS.get(t)
    if ext is not None:
        return msgpack.ExtType(ext.code, _pack(ext.fields(obj)))
    raise TypeError(f"no msgpack encoding for {t.__name__}")


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _unpack_checked(payload: bytes, what: str) -> Any:
    """``_unpack``, with whatever msgpack raises for bad bytes as E021 naming ``what``."""
    try:
        return _unpack(payload)
    except CachekitError:
        raise
    except Exception as exc:  # msgpack raises many unrelated types
        raise DeserializationError(f"cannot decode {what} ({type(exc).__name__})",
                                   code="E021") from None


def _ext_hook(code: int, data: bytes) -> Any:
    if code == X_TUPLE:
        return tuple(_unpack_nested(data))
    if code == X_SET:
        return set(_unpack_nested(data))
    if code == X_FROZENSET:
        return frozenset(_unpack_nested(data))
    if code == X_DATETIME:
        y, mo, d, h, mi, s, us, fold, tz = _unpack_nested(data)
        return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=_tz_decode(tz), fold=fold)
    if code == X_DATE:
        return dt.date(*_unpack_nested(data))
    if code == X_TIME:
        h, mi, s, us, fold, tz = _unpack_nested(data)
        return dt.time(h, mi, s, us, tzinfo=_tz_decode(tz), fold=fold)
    if code == X_TIMEDELTA:
        days, seconds, micros = _unpack_nested(data)
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if code == X_DECIMAL:
        return Decimal(data.decode())
    if code == X_UUID:
        return uuid.UUID(bytes=data)
    if code == X_BIGINT:
        return int(data.decode())
    ext = _BY_CODE.get(code)
    if ext is not None:
        value = ext.build(_unpack(data))
        if value is None:
            raise DeserializationError(f"malformed stored {ext.name}", code="E021")
        return value
    raise DeserializationError(f"unknown extension type {code}", code="E021")


class Codec:
    """Turns values into sealed frames bound to their cache key, and back."""

    def __init__(
        self,
        keyring: KeyRing,
        *,
        compress_min_size: int = 1024,
        max_value_size: int = 8 * 1024 * 1024,
        pickle_fallback: bool = True,
        clock: Callable[[], float] = time.time,
        raw_ints: bool = False,
        plain_keys: re.Pattern[bytes] | None = None,
    ) -> None:
        self.keyring = keyring
        self.raw_ints = raw_ints  # every key's plain ints as Redis integers, unsealed
        self.plain_keys = plain_keys  # full keys whose plain ints are Redis integers
        self.clock = clock  # wall clock for sealed expiries; injectable for tests
        self.compress_min_size = compress_min_size
        self.max_value_size = max_value_size
        self.pickle_fallback = pickle_fallback and keyring.authenticated
        # Full key -> (frame, value) for frames value_of opened lately whose value is an
        # immutable extension (a page): the same bytes under the same key (and keyring)
        # open to the same value, so a repeat skips verify, inflate and unpack.
        self._opened_frames: dict[bytes, tuple[bytes, Any]] = {}

    def __repr__(self) -> str:
        return f"<Codec {self.keyring!r}>"

    def plain(self, key: bytes) -> bool:
        """Whether ints under the full key ``key`` are plain Redis integers (not sealed)."""
        if self.raw_ints:
            return True
        return self.plain_keys is not None and self.plain_keys.fullmatch(key) is not None

    def serialize(self, value: Any) -> tuple[bytes, int]:
        """Return the payload for ``value`` and its serializer flag."""
        try:
            return _pack(value), 0
        except (_TooDeep, RecursionError):
            raise SerializationError(
                f"value nests tuples, sets or dates deeper than {MAX_NESTING} levels",
                code="E020",
            ) from None
        except (TypeError, ValueError, OverflowError) as exc:
            if not self.pickle_fallback:
                raise SerializationError(
                    f"cannot store a {type(value).__name__} without MASTER_KEY or "
                    "SIGNING_KEY (pickle is only read from authenticated frames)",
                    code="E020",
                ) from exc
        try:
            return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), F_PICKLE
        except Exception as exc:  # pickle raises many types for unpicklable objects
            raise SerializationError(
                f"cannot serialize a {type(value).__name__}", code="E020"
            ) from None if isinstance(exc, RecursionError) else exc

    def pack_member(self, value: Any) -> bytes:
        """A set/hash/sorted-set member as deterministic, authenticated bytes (E020 if it
        is not a msgpack type: a pickle is not deterministic)."""
        try:
            payload = _pack(value)
        except (_TooDeep, RecursionError, TypeError, ValueError, OverflowError):
            raise SerializationError(
                f"a {type(value).__name__} cannot be a set, hash or sorted-set member",
                code="E020") from None
        return self.keyring.seal_member(payload)

    def unpack_member(self, data: bytes) -> Any:
        """The value of a stored member; E003 if not authentic, E021 if undecodable."""
        return _unpack_checked(self.keyring.open_member(data), "member")

    def encode(self, key: bytes, value: Any, fresh_until: float | None = None,
               expires_at: float | None = None, *, raw_int: bool = True) -> bytes:
        """Encode ``value`` for storage under the full cache key ``key``.

        ``expires_at`` (Unix seconds) is sealed into the frame: after it, the frame is
        refused even if Redis still holds it (or it was written back). Under a plain key
        (see ``plain``), a 64-bit int without a fresh-until time is stored as a Redis integer.
        """
        if raw_int and fresh_until is None and is_int64(value) and self.plain(key):
            return str(value).encode()
        payload, flags = self.serialize(value)
        if len(payload) > self.max_value_size:  # also bounds what a reader inflates
            raise ValueTooLargeError(
                f"value is {len(payload)} bytes serialized; MAX_VALUE_SIZE is "
                f"{self.max_value_size}",
                code="E022",
            )
        if len(payload) >= self.compress_min_size:
            packed = zlib.compress(payload, 1)
            if len(packed) < len(payload) * 0.9:
                payload, flags = packed, flags | F_ZLIB
        ring = self.keyring
        if ring.encrypted:
            flags |= F_ENCRYPTED
        elif ring.authenticated:
            flags |= F_SIGNED
        if fresh_until is None:
            header = _HEAD2.pack(MAGIC, VERSION, flags, ring.key_id, expires_at or 0.0)
        else:
            header = _HEAD2.pack(MAGIC, VERSION, flags | F_FRESH, ring.key_id,
                                 expires_at or 0.0) + _FRESH.pack(fresh_until)
        if ring.encrypted:
            return header + ring.seal(header, key, payload)
        if ring.authenticated:
            return header + ring.sign(header, key, payload)
        return header + payload

    @staticmethod
    def has_fresh_until(frame: bytes) -> bool:
        """Whether a stored frame carries a fresh-until time (stale-while-revalidate)."""
        return len(frame) > HEADER_SIZE and frame[:2] == MAGIC and bool(frame[3] & F_FRESH)

    @staticmethod
    def has_times(frame: bytes) -> bool:
        """Whether a stored frame carries an expiry or a fresh-until time (touch re-seals it)."""
        if len(frame) <= HEADER_SIZE or frame[:2] != MAGIC:
            return False
        if frame[3] & F_FRESH:
            return True
        return frame[2] == VERSION and len(frame) >= HEADER2_SIZE and \
            _FRESH.unpack_from(frame, HEADER_SIZE)[0] != 0.0

    def value_of(self, key: bytes, frame: bytes, now: float) -> Any:
        """The value of a common frame, decoded inline; ``SLOW`` when ``decode`` must do it.

        Common: version 2, sealed by this ring's mode, no fresh-until time. Same checks
        and errors as ``decode`` (E003 not authentic, E021 undecodable or expired).
        """
        if len(frame) < HEADER2_SIZE or frame[:2] != MAGIC or frame[2] != VERSION:
            return SLOW
        flags = frame[3]
        if flags & F_FRESH or not self.keyring.authenticated:
            return SLOW
        seen = self._opened_frames.get(key)
        if seen is not None and seen[0] == frame:
            payload = b""  # opened before: authentic
        else:
            seen = None
            payload = self._opened(flags, frame[4:HEADER_SIZE], frame[:HEADER2_SIZE], key,
                                   frame[HEADER2_SIZE:])
        expires_at = _FRESH.unpack_from(frame, HEADER_SIZE)[0]
        if expires_at and expires_at <= now:
            raise DeserializationError("stored value is past its expiry (written back?)",
                                       code="E021")
        if seen is not None:
            return seen[1]
        if flags & (F_ZLIB | F_PICKLE):
            if flags & F_ZLIB and not flags & F_PICKLE:
                payload = self._inflate(payload)
                value = self._load(payload, flags & ~F_ZLIB)
            else:
                return self._load(payload, flags)
        else:
            value = _unpack_checked(payload, "stored value")
        if type(value) in _SHARED and len(frame) + len(payload) <= REUSE_MAX_BYTES:
            if len(self._opened_frames) >= _REUSE_MAX_ENTRIES:
                self._opened_frames.clear()
            self._opened_frames[key] = (frame, value)
        return value

    def values_into(self, found: dict[Any, Any], names: Sequence[Any], keys: Sequence[str],
                    frames: Sequence[bytes | None], now: float,
                    general: Callable[[Any, str, bytes], None]) -> None:
        """Decode a multi-key read into ``found`` (name -> value), in order; None is a miss.

        Encrypted frames of the common shape (version 2, flags exactly "encrypted", the
        current key, no fresh-until time) are opened here in one tight loop; every other
        frame, and any that fails here, goes to ``general(name, key, frame)``: the full
        decode, which says what is wrong (E003, E021) and adds what it finds itself.
        """
        decrypt = self.keyring.current_decrypt()
        if decrypt is None:
            value_of = self.value_of
            for name, key, frame in zip(names, keys, frames, strict=True):
                if frame is None:
                    continue
                try:
                    value = value_of(key.encode(), frame, now)
                except (IntegrityError, DeserializationError):
                    value = SLOW
                if value is SLOW:
                    general(name, key, frame)
                else:
                    found[name] = value
            return
        # The header's first 16 bytes (kept: they begin the associated data) are tested
        # with byte comparisons alone: big-endian IEEE doubles >= 0 sort as their bytes,
        # so "common head, expiry in (now, +inf]" is one range and "never expires" one value.
        head = _COMMON + self.keyring.key_id
        after_now, last = head + _FRESH.pack(now), head + _FRESH.pack(float("inf"))
        never = head + _FRESH.pack(0.0)
        unpackb = msgpack.unpackb
        hook = _ext_hook
        for name, key, frame in zip(names, keys, frames, strict=True):
            if frame is None:
                continue
            header = frame[:HEADER2_SIZE]
            if after_now < header <= last or header == never:
                try:
                    found[name] = unpackb(decrypt(frame[HEADER2_SIZE:_BODY], frame[_BODY:],
                                                  header + key.encode()),
                                          ext_hook=hook, strict_map_key=False)  # raw=False
                    continue
                except Exception:  # whatever it is, the full decode names it
                    pass
            general(name, key, frame)

    def decode(self, key: bytes, frame: bytes, now: float | None = None, *,
               raw_int: bool = True) -> Entry:
        """Decode a stored frame; raises E003 (not authentic) or E021 (undecodable, expired)."""
        if raw_int and frame[:2] != MAGIC:
            n = redis_int(frame)
            if n is not None:
                if self.plain(key):
                    return Entry(n)
                raise IntegrityError("an unsealed integer under a key not in PLAIN_COUNTERS",
                                     code="E003")
        if len(frame) < HEADER_SIZE:
            raise DeserializationError("frame too short", code="E021")
        magic, version, flags, key_id = _HEAD.unpack_from(frame)
        if magic != MAGIC:
            raise DeserializationError("not a cachekit-web frame", code="E021")
        if version == VERSION:
            head_len = HEADER2_SIZE
        elif version == VERSION_1:
            head_len = HEADER_SIZE
        else:
            raise DeserializationError("not a cachekit-web frame", code="E021")
        fresh_at = head_len
        if flags & F_FRESH:
            head_len += _FRESH.size
        if len(frame) < head_len:
            raise DeserializationError("frame too short", code="E021")
        header, body = frame[:head_len], frame[head_len:]
        if self.keyring.authenticated:
            payload = self._opened(flags, key_id, header, key, body)
        else:
            if flags & (F_ENCRYPTED | F_SIGNED | F_PICKLE):
                raise IntegrityError("sealed value but no key configured", code="E003")
            payload = body
        expires_at = _FRESH.unpack_from(header, HEADER_SIZE)[0] if version == VERSION else 0.0
        if expires_at and expires_at <= (self.clock() if now is None else now):
            raise DeserializationError("stored value is past its expiry (written back?)",
                                       code="E021")
        fresh_until = _FRESH.unpack_from(header, fresh_at)[0] if flags & F_FRESH else None
        return Entry(self._load(payload, flags), fresh_until, expires_at or None)

    def _opened(self, flags: int, key_id: bytes, header: bytes, key: bytes,
                body: bytes) -> bytes:
        """The payload of a frame sealed as this keyring requires (it has a key): E003 else.

        Refuses downgrades: with a key configured, only frames sealed by it are read.
        """
        ring = self.keyring
        if ring.encrypted:
            if not flags & F_ENCRYPTED:
                raise IntegrityError("unencrypted value where encryption is on", code="E003")
            return ring.open(key_id, header, key, body)
        if flags & F_ENCRYPTED or not flags & F_SIGNED:
            raise IntegrityError("value not signed with this cache's key", code="E003")
        return ring.verify(key_id, header, key, body)

    @staticmethod
    def key_id_of(frame: bytes) -> bytes | None:
        """The key id in a frame's header, or None if ``frame`` is not a frame."""
        if len(frame) < HEADER_SIZE or frame[:2] != MAGIC or frame[2] not in (VERSION,
                                                                              VERSION_1):
            return None
        return frame[4:HEADER_SIZE]

    @staticmethod
    def expiry_of(frame: bytes) -> float:
        """The absolute expiry in a frame's header (Unix seconds; 0.0 = never or v1)."""
        if len(frame) < HEADER2_SIZE or frame[2] != VERSION:
            return 0.0
        return float(_FRESH.unpack_from(frame, HEADER_SIZE)[0])

    def reseal(self, key: bytes, frame: bytes, v1_expires_at: float = 0.0) -> bytes | None:
        """Seal an encrypted frame again under the current key; None if it already is.

        The payload is moved as it is (never deserialized, so never unpickled); flags,
        expiry and fresh-until are kept, so the entry expires and goes stale exactly
        when it would have. A version 1 frame (no sealed expiry) gets ``v1_expires_at``
        (the caller's knowledge of its Redis TTL), so re-sealing never makes an entry
        replayable for longer. Raises E003 (no key opens it) or E021 (not a frame).
        """
        ring = self.keyring
        if not ring.encrypted:
            raise ConfigurationError("re-sealing needs a MASTER_KEY", code="E001")
        key_id = self.key_id_of(frame)
        if key_id is None:
            raise DeserializationError("not a cachekit-web frame", code="E021")
        if key_id == ring.key_id:
            return None
        version, flags = frame[2], frame[3]
        head_len = HEADER2_SIZE if version == VERSION else HEADER_SIZE
        fresh_at = head_len
        if flags & F_FRESH:
            head_len += _FRESH.size
        if len(frame) < head_len:
            raise DeserializationError("frame too short", code="E021")
        if not flags & F_ENCRYPTED:
            raise IntegrityError("unencrypted value where encryption is on", code="E003")
        header, body = frame[:head_len], frame[head_len:]
        payload = ring.open(key_id, header, key, body)
        expires_at = self.expiry_of(frame) if version == VERSION else v1_expires_at
        new_header = _HEAD2.pack(MAGIC, VERSION, flags, ring.key_id, expires_at)
        if flags & F_FRESH:
            new_header += header[fresh_at:fresh_at + _FRESH.size]
        return new_header + ring.seal(new_header, key, payload)

    def _load(self, payload: bytes, flags: int) -> Any:
        if flags & F_PICKLE and not self.pickle_fallback:
            raise DeserializationError("pickled value refused: PICKLE_FALLBACK is off",
                                       code="E021")
        try:
            if flags & F_ZLIB:
                payload = self._inflate(payload)
            if flags & F_PICKLE:
                return pickle.loads(payload)  # only reached for authenticated frames
            return _unpack(payload)
        except CachekitError:
            raise
        except Exception as exc:  # msgpack, zlib and pickle raise many unrelated types
            raise DeserializationError(f"cannot decode stored value ({type(exc).__name__})",
                                       code="E021") from None

    def _inflate(self, data: bytes) -> bytes:
        """Decompress at most MAX_VALUE_SIZE bytes; more is a bomb (E021)."""
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, self.max_value_size)
        except zlib.error:
            raise DeserializationError("cannot decode stored value (error)",
                                       code="E021") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise DeserializationError(
                f"compressed value inflates beyond MAX_VALUE_SIZE ({self.max_value_size}) "
                "or is truncated", code="E021")
        return out
