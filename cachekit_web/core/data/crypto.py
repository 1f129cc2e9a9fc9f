"""Key ring: HKDF subkeys, AES-256-GCM sealing and HMAC signing.

Errors from ``cryptography`` are translated here, at this one boundary.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import os
import struct
from collections.abc import Callable, Iterator

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ..errors import ConfigurationError, IntegrityError

NONCE_SIZE = 12
TAG_SIZE = 16
MAC_SIZE = 16
KEY_ID_SIZE = 4
_MIN_KEY_BYTES = 32
# A random 32-byte key has about 30 distinct byte values; fewer than 16 happens by chance
# with probability far below 1e-15, so such a key was typed, padded or zeroed by hand.
MIN_DISTINCT_KEY_BYTES = 16
# Shared secrets (SIGNING_KEY, Flask HEALTH_TOKEN): at least this long, this varied.
MIN_SECRET_CHARS = 16
MIN_DISTINCT_SECRET_CHARS = 8


class _NonceSource:
    """96-bit nonces: an 8-byte random per-process prefix and a 4-byte counter.

    The process id is compared before every nonce, so a child made by any fork
    (os.fork, or a fork in C that Python never sees, as uWSGI's master does)
    draws its own prefix before its first nonce. The prefix is also redrawn when
    the counter passes 2**32. Lock-free: ``next()`` on an ``itertools.count`` is
    atomic, and a state (pid, prefix, counter) is replaced whole, never mutated,
    so a lock inherited in a held state across a fork cannot hang the child.
    """

    def __init__(self) -> None:
        self._state = self._fresh_state()

    @staticmethod
    def _fresh_state() -> tuple[int, bytes, Iterator[int]]:
        return os.getpid(), os.urandom(8), itertools.count(1)

    def next(self) -> bytes:
        """Return a fresh nonce."""
        state = self._state
        if state[0] != os.getpid():  # forked: never continue the parent's sequence
            state = self._state = self._fresh_state()
        n = next(state[2])
        while n > 0xFFFFFFFF:
            state = self._state = self._fresh_state()
            n = next(state[2])
        return state[1] + _COUNTER.pack(n)


_COUNTER = struct.Struct(">I")
NONCES = _NonceSource()


def parse_master_key(value: str, name: str = "MASTER_KEY") -> bytes:
    """Decode a hex master key of at least 32 bytes, or raise E002."""
    text = value.strip()
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise ConfigurationError(f"{name} is not hexadecimal", code="E002") from None
    if len(raw) < _MIN_KEY_BYTES:
        raise ConfigurationError(
            f"{name} is {len(raw)} bytes; at least {_MIN_KEY_BYTES} are needed", code="E002"
        )
    if len(set(raw)) < MIN_DISTINCT_KEY_BYTES:
        raise ConfigurationError(
            f"{name} is weak: only {len(set(raw))} distinct byte values (a random key has about "
            f"30; at least {MIN_DISTINCT_KEY_BYTES} are required); generate a random key",
            code="E002",
        )
    return raw


def check_secret(value: str, name: str) -> None:
    """Raise E004 if a shared secret is too short or too repetitive to resist guessing."""
    if len(value) < MIN_SECRET_CHARS or len(set(value)) < MIN_DISTINCT_SECRET_CHARS:
        raise ConfigurationError(
            f"{name} is too weak: use at least {MIN_SECRET_CHARS} characters with at least "
            f"{MIN_DISTINCT_SECRET_CHARS} different ones, e.g. a random token", code="E004"
        )


def _hkdf(secret: bytes, purpose: str, namespace: str, length: int = 32) -> bytes:
    info = f"cachekit-web/v1/{purpose}/{namespace}".encode()
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(secret)


# Set, hash and sorted-set members: deterministic (Redis compares them byte for byte),
# authenticated, bound to the namespace by the derived key and to this purpose here.
_MEMBER_AD = b"cachekit-web/member/v1"


def derived_signing_key(secret: str | bytes, framework: str) -> str:
    """A SIGNING_KEY derived from a framework's SECRET_KEY, so the key itself is never used."""
    raw = secret if isinstance(secret, bytes) else str(secret).encode()
    label = f"cachekit-web/{framework}/signing".encode()
    return hmac.new(raw, label, hashlib.sha256).hexdigest()


def fingerprint(secret: bytes) -> str:
    """A short, non-reversible identifier for a key, safe to show."""
    return hashlib.sha256(b"cachekit-web/fingerprint/" + secret).hexdigest()[:16]


class _Sealer:
    """One AES-GCM key and its id."""

    def __init__(self, master: bytes, namespace: str) -> None:
        key = _hkdf(master, "aes-256-gcm", namespace)
        self.key_id = hashlib.sha256(b"cachekit-web/key-id/" + key).digest()[:KEY_ID_SIZE]
        self.aead = AESGCM(key)
        self.siv = AESSIV(_hkdf(master, "aes-256-siv-members", namespace, 64))
        self.fingerprint = fingerprint(master)


class KeyRing:
    """The current key (seals and opens) and previous keys (open only)."""

    def __init__(
        self,
        *,
        namespace: str,
        master_key: str | None = None,
        previous_keys: tuple[str, ...] = (),
        signing_key: str | bytes | None = None,
    ) -> None:
        self.namespace = namespace
        self._current: _Sealer | None = None
        self._openers: dict[bytes, _Sealer] = {}
        if master_key:
            self._current = _Sealer(parse_master_key(master_key), namespace)
            self._openers[self._current.key_id] = self._current
            for i, old in enumerate(previous_keys):
                sealer = _Sealer(parse_master_key(old, f"PREVIOUS_MASTER_KEYS[{i}]"), namespace)
                self._openers.setdefault(sealer.key_id, sealer)
        self._mac_key: bytes | None = None
        self._mac_id = b"\0" * KEY_ID_SIZE
        if signing_key:
            secret = signing_key.encode() if isinstance(signing_key, str) else signing_key
            self._mac_key = _hkdf(secret, "hmac-sha256", namespace)
            self._member_mac = _hkdf(secret, "hmac-sha256-members", namespace)
            self._mac_base = hmac.new(self._mac_key, digestmod=hashlib.sha256)
            self._mac_id = hashlib.sha256(b"cachekit-web/key-id/" + self._mac_key).digest()[
                :KEY_ID_SIZE
            ]

    def __repr__(self) -> str:
        return f"<KeyRing encrypted={self.encrypted} fingerprint={self.fingerprint}>"

    @property
    def encrypted(self) -> bool:
        """Whether values are sealed with AES-GCM."""
        return self._current is not None

    @property
    def authenticated(self) -> bool:
        """Whether frames are encrypted or signed (so pickle may be read)."""
        return self._current is not None or self._mac_key is not None

    @property
    def fingerprint(self) -> str | None:
        """Fingerprint of the current master key, never the key."""
        return self._current.fingerprint if self._current else None

    @property
    def key_id(self) -> bytes:
        """Id written into the frame header for new values."""
        return self._current.key_id if self._current else self._mac_id

    def is_previous(self, key_id: bytes) -> bool:
        """Whether ``key_id`` names one of the previous master keys (opens, never seals)."""
        return key_id in self._openers and key_id != self.key_id

    def seal(self, header: bytes, key: bytes, payload: bytes) -> bytes:
        """Encrypt payload bound to header and cache key; returns nonce + ciphertext."""
        assert self._current is not None
        nonce = NONCES.next()
        return nonce + self._current.aead.encrypt(nonce, payload, header + key)

    def current_decrypt(self) -> Callable[[bytes, bytes, bytes], bytes] | None:
        """AES-GCM decrypt(nonce, data, associated data) with the current key, for a
        multi-key read's inner loop; it raises cryptography's errors untranslated, so a
        caller treats any error as "use ``open``" (which translates). None if not encrypting."""
        return self._current.aead.decrypt if self._current is not None else None

    def open(self, key_id: bytes, header: bytes, key: bytes, body: bytes) -> bytes:
        """Decrypt a sealed body, or raise E003."""
        sealer = self._openers.get(key_id)
        if sealer is None:
            raise IntegrityError("value sealed with an unknown key", code="E003")
        if len(body) < NONCE_SIZE + TAG_SIZE:
            raise IntegrityError("sealed value is truncated", code="E003")
        try:
            return sealer.aead.decrypt(body[:NONCE_SIZE], body[NONCE_SIZE:], header + key)
        except InvalidTag:
            raise IntegrityError("authentication tag mismatch", code="E003") from None

    def seal_member(self, payload: bytes) -> bytes:
        """Deterministically seal a member: AES-SIV, HMAC-tagged when signing, else as is."""
        if self._current is not None:
            return self._current.siv.encrypt(payload, [_MEMBER_AD])
        if self._mac_key is not None:
            return payload + self._member_tag(payload)
        return payload

    def open_member(self, data: bytes) -> bytes:
        """The payload of a sealed member (current key, then previous ones), or raise E003."""
        if self._current is not None:
            for sealer in (self._current, *self._openers.values()):
                try:
                    return sealer.siv.decrypt(data, [_MEMBER_AD])
                except (InvalidTag, ValueError):
                    continue
            raise IntegrityError("member failed authentication", code="E003")
        if self._mac_key is not None:
            payload, tag = data[:-MAC_SIZE], data[-MAC_SIZE:]
            if len(data) < MAC_SIZE or not hmac.compare_digest(tag, self._member_tag(payload)):
                raise IntegrityError("member signature mismatch", code="E003")
            return payload
        return data

    def _member_tag(self, payload: bytes) -> bytes:
        return hmac.new(self._member_mac, _MEMBER_AD + payload, hashlib.sha256).digest()[:MAC_SIZE]

    def sign(self, header: bytes, key: bytes, payload: bytes) -> bytes:
        """Return payload followed by its truncated HMAC-SHA256."""
        assert self._mac_key is not None
        return payload + self._mac(header, key, payload)

    def verify(self, key_id: bytes, header: bytes, key: bytes, body: bytes) -> bytes:
        """Check a signed body and return its payload, or raise E003."""
        if self._mac_key is None or key_id != self._mac_id:
            raise IntegrityError("value signed with an unknown key", code="E003")
        if len(body) < MAC_SIZE:
            raise IntegrityError("signed value is truncated", code="E003")
        payload, tag = body[:-MAC_SIZE], body[-MAC_SIZE:]
        if not hmac.compare_digest(tag, self._mac(header, key, payload)):
            raise IntegrityError("signature mismatch", code="E003")
        return payload

    def _mac(self, header: bytes, key: bytes, payload: bytes) -> bytes:
        assert self._mac_key is not None
        mac = self._mac_base.copy()  # copying a keyed HMAC skips re-deriving its pads
        mac.update(header + struct.pack(">I", len(key)) + key + payload)
        return mac.digest()[:MAC_SIZE]
