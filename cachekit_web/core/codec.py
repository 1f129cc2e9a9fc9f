"""Value <-> bytes: msgpack with extension types, compression, sealed frames.

Frame layout (all integers big-endian)::

    b"CK" | version (1) | flags (1) | key id (4) | [fresh_until: float64] | body

The whole header is authenticated together with the full cache key (AEAD
associated data, or HMAC input), so a frame cannot be moved to another key
or have its flags changed without failing with E003.
"""

from __future__ import annotations

import datetime as dt
import pickle
import struct
import uuid
import zlib
from decimal import Decimal
from typing import Any, NamedTuple, cast

import msgpack

from .crypto import KeyRing
from .errors import (
    CachekitError,
    DeserializationError,
    IntegrityError,
    SerializationError,
    ValueTooLargeError,
)
from .web import StoredPage

try:  # zoneinfo is 3.9+, but tzdata may be absent on some systems
    from zoneinfo import ZoneInfo
except ImportError:  # pragma: no cover
    ZoneInfo = None  # type: ignore[assignment,misc]

MAGIC = b"CK"
VERSION = 1
F_ENCRYPTED = 0x01
F_SIGNED = 0x02
F_PICKLE = 0x04
F_ZLIB = 0x08
F_FRESH = 0x10

_HEAD = struct.Struct(">2sBB4s")
_FRESH = struct.Struct(">d")
HEADER_SIZE = _HEAD.size

# msgpack extension type codes; part of the stored format, never renumber.
(X_TUPLE, X_SET, X_FROZENSET, X_DATETIME, X_DATE, X_TIME, X_TIMEDELTA, X_DECIMAL, X_UUID,
 X_BIGINT) = range(1, 11)
X_PAGE = 11  # a cached HTTP response (core.web.StoredPage): pages are known by type, not shape


class Entry(NamedTuple):
    """A decoded value and, for stale-while-revalidate entries, when it goes stale."""

    value: Any
    fresh_until: float | None = None


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
        return msgpack.ExtType(X_TUPLE, _pack(list(obj)))
    if t is set:
        return msgpack.ExtType(X_SET, _pack(list(obj)))
    if t is frozenset:
        return msgpack.ExtType(X_FROZENSET, _pack(list(obj)))
    if t is dt.datetime:
        return msgpack.ExtType(X_DATETIME, _pack([
            obj.year, obj.month, obj.day, obj.hour, obj.minute, obj.second,
            obj.microsecond, obj.fold, _tz_encode(obj.tzinfo),
        ]))
    if t is dt.date:
        return msgpack.ExtType(X_DATE, _pack([obj.year, obj.month, obj.day]))
    if t is dt.time:
        return msgpack.ExtType(X_TIME, _pack([
            obj.hour, obj.minute, obj.second, obj.microsecond, obj.fold,
            _tz_encode(obj.tzinfo),
        ]))
    if t is dt.timedelta:
        return msgpack.ExtType(X_TIMEDELTA, _pack([obj.days, obj.seconds, obj.microseconds]))
    if t is Decimal:
        return msgpack.ExtType(X_DECIMAL, str(obj).encode())
    if t is uuid.UUID:
        return msgpack.ExtType(X_UUID, obj.bytes)
    if t is int:  # only reached for integers outside msgpack's 64-bit range
        return msgpack.ExtType(X_BIGINT, str(obj).encode())
    if t is StoredPage:
        return msgpack.ExtType(X_PAGE, _pack([
            obj.status, [list(h) for h in obj.headers], obj.body, obj.stored_at, obj.charset,
        ]))
    raise TypeError(f"no msgpack encoding for {t.__name__}")


def _unpack(data: bytes) -> Any:
    return msgpack.unpackb(data, ext_hook=_ext_hook, raw=False, strict_map_key=False)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == X_TUPLE:
        return tuple(_unpack(data))
    if code == X_SET:
        return set(_unpack(data))
    if code == X_FROZENSET:
        return frozenset(_unpack(data))
    if code == X_DATETIME:
        y, mo, d, h, mi, s, us, fold, tz = _unpack(data)
        return dt.datetime(y, mo, d, h, mi, s, us, tzinfo=_tz_decode(tz), fold=fold)
    if code == X_DATE:
        return dt.date(*_unpack(data))
    if code == X_TIME:
        h, mi, s, us, fold, tz = _unpack(data)
        return dt.time(h, mi, s, us, tzinfo=_tz_decode(tz), fold=fold)
    if code == X_TIMEDELTA:
        days, seconds, micros = _unpack(data)
        return dt.timedelta(days=days, seconds=seconds, microseconds=micros)
    if code == X_DECIMAL:
        return Decimal(data.decode())
    if code == X_UUID:
        return uuid.UUID(bytes=data)
    if code == X_BIGINT:
        return int(data.decode())
    if code == X_PAGE:
        status, headers, body, stored_at, charset = _unpack(data)
        if not (isinstance(status, int) and isinstance(body, bytes)
                and isinstance(stored_at, float) and isinstance(charset, (str, type(None)))
                and all(isinstance(k, str) and isinstance(v, str) for k, v in headers)):
            raise DeserializationError("malformed stored page", code="E021")
        return StoredPage(status, tuple((k, v) for k, v in headers), body, stored_at, charset)
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
    ) -> None:
        self.keyring = keyring
        self.compress_min_size = compress_min_size
        self.max_value_size = max_value_size
        self.pickle_fallback = pickle_fallback and keyring.authenticated

    def __repr__(self) -> str:
        return f"<Codec {self.keyring!r}>"

    def serialize(self, value: Any) -> tuple[bytes, int]:
        """Return the payload for ``value`` and its serializer flag."""
        try:
            return _pack(value), 0
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
            ) from exc

    def encode(self, key: bytes, value: Any, fresh_until: float | None = None) -> bytes:
        """Encode ``value`` for storage under the full cache key ``key``."""
        payload, flags = self.serialize(value)
        if len(payload) >= self.compress_min_size:
            packed = zlib.compress(payload, 1)
            if len(packed) < len(payload) * 0.9:
                payload, flags = packed, flags | F_ZLIB
        if len(payload) > self.max_value_size:
            raise ValueTooLargeError(
                f"value is {len(payload)} bytes after compression; MAX_VALUE_SIZE is "
                f"{self.max_value_size}",
                code="E022",
            )
        ring = self.keyring
        if ring.encrypted:
            flags |= F_ENCRYPTED
        elif ring.authenticated:
            flags |= F_SIGNED
        if fresh_until is not None:
            flags |= F_FRESH
        header = _HEAD.pack(MAGIC, VERSION, flags, ring.key_id)
        if fresh_until is not None:
            header += _FRESH.pack(fresh_until)
        if ring.encrypted:
            return header + ring.seal(header, key, payload)
        if ring.authenticated:
            return header + ring.sign(header, key, payload)
        return header + payload

    @staticmethod
    def has_fresh_until(frame: bytes) -> bool:
        """Whether a stored frame carries a fresh-until time (stale-while-revalidate)."""
        return len(frame) > HEADER_SIZE and bool(frame[3] & F_FRESH)

    def decode(self, key: bytes, frame: bytes) -> Entry:
        """Decode a stored frame; raises E003 (not authentic) or E021 (undecodable)."""
        if len(frame) < HEADER_SIZE:
            raise DeserializationError("frame too short", code="E021")
        magic, version, flags, key_id = _HEAD.unpack_from(frame)
        if magic != MAGIC or version != VERSION:
            raise DeserializationError("not a cachekit-web frame", code="E021")
        head_len = HEADER_SIZE + (_FRESH.size if flags & F_FRESH else 0)
        if len(frame) < head_len:
            raise DeserializationError("frame too short", code="E021")
        header, body = frame[:head_len], frame[head_len:]
        ring = self.keyring
        # Refuse downgrades: with a key configured, only frames sealed by it are read.
        if ring.encrypted:
            if not flags & F_ENCRYPTED:
                raise IntegrityError("unencrypted value where encryption is on", code="E003")
            payload = ring.open(key_id, header, key, body)
        elif ring.authenticated:
            if flags & F_ENCRYPTED or not flags & F_SIGNED:
                raise IntegrityError("value not signed with this cache's key", code="E003")
            payload = ring.verify(key_id, header, key, body)
        else:
            if flags & (F_ENCRYPTED | F_SIGNED | F_PICKLE):
                raise IntegrityError("sealed value but no key configured", code="E003")
            payload = body
        fresh_until = _FRESH.unpack_from(header, HEADER_SIZE)[0] if flags & F_FRESH else None
        return Entry(self._load(payload, flags), fresh_until)

    @staticmethod
    def _load(payload: bytes, flags: int) -> Any:
        try:
            if flags & F_ZLIB:
                payload = zlib.decompress(payload)
            if flags & F_PICKLE:
                return pickle.loads(payload)  # only reached for authenticated frames
            return _unpack(payload)
        except CachekitError:
            raise
        except Exception as exc:  # msgpack, zlib and pickle raise many unrelated types
            raise DeserializationError(f"cannot decode stored value ({type(exc).__name__})",
                                       code="E021") from None

