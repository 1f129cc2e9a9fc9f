"""Key rotation: seal every entry of a namespace again under the current MASTER_KEY.

After a new MASTER_KEY is deployed with the old one in PREVIOUS_MASTER_KEYS,
``rotate`` walks the namespace (SCAN, in batches, through the Backend protocol,
so a Cluster's every primary is seen) and rewrites each entry still sealed with
a previous key. Once it reports nothing left, the old key can be retired.

- Resumable by being idempotent: an entry already under the current key id is
  skipped without a write, so an interrupted run is finished by running again.
- Compare before write: a batch is written with ``compare_and_set_many`` (a
  server-side script per key: set only if it still holds what was read, TTL
  kept), and an entry that changed meanwhile goes through ``Backend.update``
  (WATCH/MULTI on Redis, a compare-and-set script on the key's node on a
  Cluster), so a value written concurrently is never replaced by a re-sealed
  old one: its new value is judged afresh (already current: left alone).
  A backend without the batch method uses ``update`` for every entry.
- The payload is moved as it is (never deserialized); expiry and fresh-until
  stay in the frame, and Redis keeps the key's TTL (KEEPTTL).
- Entries that no key opens, or that are not frames, are left alone and counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, fields

from ..backends import Backend, SwapsMany
from ..errors import ConfigurationError, DeserializationError, IntegrityError, LockTimeoutError
from .codec import F_ENCRYPTED, VERSION_1, Codec
from .ints import redis_int

BATCH = 500


class _Current(Exception):
    """The entry was rewritten under the current key while we looked: nothing to do."""


@dataclass
class RotationReport:
    """What one rotation run saw and did."""

    dry_run: bool = False
    seen: int = 0
    resealed: int = 0  # in a dry run: would be re-sealed
    current: int = 0  # already under the current key: skipped, no write
    replaced: int = 0  # rewritten concurrently under the current key: kept
    counters: int = 0  # Redis integers (counters are not sealed: docs/security.md)
    unreadable: int = 0  # no key opens it, or not a cachekit-web frame: left alone
    expired: int = 0  # past its sealed expiry: left for Redis to drop
    gone: int = 0  # deleted or expired between the scan and the read
    contended: int = 0  # too many concurrent writes to get a turn: left as it was

    @property
    def remaining(self) -> int:
        """Entries still sealed with a previous key after this run (0 when done)."""
        return self.resealed if self.dry_run else self.contended

    def summary(self) -> str:
        """One line for a person: the counts that are not zero."""
        verb = "would re-seal" if self.dry_run else "re-sealed"
        parts = [f"{verb} {self.resealed} of {self.seen} entries"]
        parts += [f"{f.name} {getattr(self, f.name)}" for f in fields(self)
                  if f.name not in ("dry_run", "seen", "resealed") and getattr(self, f.name)]
        return ", ".join(parts)


def _namespace_prefix(codec: Codec) -> str:
    return codec.keyring.namespace + ":"


def rotate(
    backend: Backend,
    codec: Codec,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
    on_batch: Callable[[int], None] | None = None,
    before_write: Callable[[str], None] | None = None,
    report: RotationReport | None = None,
) -> RotationReport:
    """Re-seal every entry of ``codec``'s namespace still sealed with a previous key.

    ``on_batch(n)`` is called after each batch of ``n`` keys (progress);
    ``before_write(key)`` runs between an entry's read and its compare-and-set
    (tests use it to write concurrently at the worst moment). Counts go into
    ``report`` as they happen, so an interrupted run still says what it did.
    """
    if not codec.keyring.encrypted:
        raise ConfigurationError("rotation re-seals under MASTER_KEY, which is not set",
                                 code="E001")
    report = report or RotationReport(dry_run=dry_run)
    report.dry_run = dry_run
    for keys in backend.scan_prefix(_namespace_prefix(codec), batch):
        _rotate_batch(backend, codec, keys, report, dry_run, before_write)
        if on_batch is not None:
            on_batch(len(keys))
    return report


def _rotate_batch(backend: Backend, codec: Codec, keys: list[bytes], report: RotationReport,
                  dry_run: bool, before_write: Callable[[str], None] | None) -> None:
    names: list[str] = []
    raw_keys: list[bytes] = []
    for k in keys:
        report.seen += 1
        try:
            names.append(k.decode())
            raw_keys.append(k)
        except UnicodeDecodeError:  # no client of ours writes such a key
            report.unreadable += 1
    now = time.time()
    writes: list[tuple[str, bytes, bytes, bytes]] = []  # name, key, frame read, re-sealed
    for name, key, frame in zip(names, raw_keys, backend.get_many(names), strict=True):
        if frame is None:  # gone, or not a string value
            report.gone += 1
            continue
        if redis_int(frame) is not None:  # a counter: stored unsealed, nothing to rotate
            report.counters += 1
            continue
        try:
            expiry = Codec.expiry_of(frame)
            if Codec.key_id_of(frame) != codec.keyring.key_id and expiry and expiry <= now:
                report.expired += 1
                continue
            new = codec.reseal(key, frame, _v1_expiry(backend, name, frame))  # opens it
        except (IntegrityError, DeserializationError):
            report.unreadable += 1
            continue
        if new is None:
            report.current += 1
        elif dry_run:
            report.resealed += 1
        else:
            writes.append((name, key, frame, new))
    if not writes:
        return
    # Every built-in backend swaps in batches; a store of one's own may not.
    cas_many: Callable[[list[tuple[str, bytes, bytes]]], list[bool]] | None = (
        backend.compare_and_set_many if isinstance(backend, SwapsMany) else None)
    if before_write is not None and cas_many:
        for name, *_ in writes:
            before_write(name)
    done = cas_many([(n, f, r) for n, _, f, r in writes]) if cas_many else [False] * len(writes)
    for (name, key, frame, new), ok in zip(writes, done, strict=True):
        if ok:
            report.resealed += 1
            continue
        # Changed since the batch read (or no batch compare-and-set): judge it afresh, alone.
        try:
            if _swap(backend, codec, name, key, frame, new, None if cas_many else before_write):
                report.resealed += 1
            else:
                report.gone += 1
        except (IntegrityError, DeserializationError):
            report.unreadable += 1
        except _Current:
            report.replaced += 1
        except LockTimeoutError:
            report.contended += 1


def _v1_expiry(backend: Backend, name: str, frame: bytes) -> float:
    """For a version 1 frame (no sealed expiry): its Redis TTL as an absolute time."""
    if frame[2:3] != bytes([VERSION_1]):
        return 0.0
    ttl = backend.ttl(name)
    return 0.0 if ttl is None else time.time() + ttl


def _swap(backend: Backend, codec: Codec, name: str, key: bytes, seen: bytes,
          resealed: bytes, before_write: Callable[[str], None] | None) -> bool:
    """Write ``resealed`` only where the key still holds what we read; False if gone."""

    def replace(current: bytes) -> bytes:
        if before_write is not None:
            before_write(name)
        if current == seen:
            return resealed
        fresh = codec.reseal(key, current, _v1_expiry(backend, name, current))  # judged afresh
        if fresh is None:
            raise _Current
        return fresh

    return backend.update(name, replace) is not None


def count_entries(backend: Backend, codec: Codec) -> int:
    """How many keys ``codec``'s namespace holds (one SCAN pass: the progress bar's total)."""
    return sum(len(keys) for keys in backend.scan_prefix(_namespace_prefix(codec), BATCH))


@dataclass
class KeySample:
    """How the sampled entries of a namespace are sealed, by key."""

    sampled: int = 0
    current: int = 0
    previous: int = 0
    other: int = 0  # an unknown key, not encrypted, or not a frame

    @property
    def looks_swapped(self) -> bool:
        """Entries open under a previous key and none under the current one: MASTER_KEY and
        PREVIOUS_MASTER_KEYS may be swapped (re-sealing would lock out the key in use)."""
        return bool(self.previous) and not self.current

    @property
    def previous_share(self) -> float:
        """Share (0..1) of sampled entries still sealed with a previous key."""
        return self.previous / self.sampled if self.sampled else 0.0


def sample_keys(backend: Backend, codec: Codec, limit: int = 1000) -> KeySample:
    """Read up to ``limit`` entries' headers (SCAN order) and tell whose key sealed them."""
    ring = codec.keyring
    sample = KeySample()
    for keys in backend.scan_prefix(_namespace_prefix(codec), min(limit, BATCH)):
        names = [k.decode(errors="replace") for k in keys[:limit - sample.sampled]]
        for frame in backend.get_many(names):
            if frame is None or redis_int(frame) is not None:  # counters are not sealed
                continue
            sample.sampled += 1
            key_id = Codec.key_id_of(frame)
            if key_id is not None and frame[3] & F_ENCRYPTED and key_id == ring.key_id:
                sample.current += 1
            elif key_id is not None and ring.is_previous(key_id):
                sample.previous += 1
            else:
                sample.other += 1
        if sample.sampled >= limit:
            break
    return sample


def rotation_status(backend: Backend, codec: Codec, limit: int = 1000) -> str:
    """The doctor's line about key rotation, from a sample of up to ``limit`` entries."""
    if not codec.keyring.encrypted:
        return "no MASTER_KEY: values are not encrypted, nothing to rotate"
    return describe_sample(sample_keys(backend, codec, limit))


def describe_sample(sample: KeySample) -> str:
    """Say how a sample is sealed: the share still under a previous key, and what to do."""
    if not sample.sampled:
        return "no entries in the namespace to sample"
    other = f"; {sample.other} sealed with an unknown key or unreadable" if sample.other else ""
    if sample.previous:
        return (f"{sample.previous_share:.1%} of {sample.sampled} sampled entries still sealed "
                f"with a previous key: run cachekit-web rotate{other}")
    return f"all {sample.current} of {sample.sampled} sampled entries use the current key{other}"
