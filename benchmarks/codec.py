"""Section 3: the codec alone (no network): what serializing and sealing cost per value."""

from __future__ import annotations

import pickle
import zlib
from collections.abc import Callable
from typing import Any

import msgpack

from cachekit_web.core.data.codec import Codec
from cachekit_web.core.data.crypto import KeyRing

from .contenders import MASTER_KEY, SIGNING_KEY
from .harness import (
    Batch,
    Config,
    Table,
    fmt_paired,
    fmt_rate,
    fmt_spread,
    fmt_us,
    large_value,
    measure,
    small_value,
)

COLUMNS = ("benchmark", "contender", "stored B", "round trips/s", "us/op", "spread",
           "vs pickle", "vs msgpack")
_KEY = b"bench:codec:key"

Pair = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]


def _codec(mode: str) -> Codec:
    ring = KeyRing(
        namespace="bench",
        master_key=MASTER_KEY if mode == "encrypted" else None,
        signing_key=SIGNING_KEY if mode == "signed" else None,
    )
    return Codec(ring)  # the library's defaults: zlib level 1 from 1024 bytes


def _pairs(compressed_baseline: bool) -> dict[str, Pair]:
    pairs: dict[str, Pair] = {
        "pickle": (lambda v: pickle.dumps(v, pickle.HIGHEST_PROTOCOL), pickle.loads),
        "msgpack": (lambda v: msgpack.packb(v, use_bin_type=True),
                    lambda b: msgpack.unpackb(b, raw=False)),
    }
    if compressed_baseline:
        # cachekit compresses large payloads; this row separates zlib's cost from sealing's.
        pairs["msgpack + zlib(1)"] = (
            lambda v: zlib.compress(msgpack.packb(v, use_bin_type=True), 1),
            lambda b: msgpack.unpackb(zlib.decompress(b), raw=False),
        )
    for mode in ("plain", "signed", "encrypted"):
        codec = _codec(mode)
        pairs[f"cachekit {mode}"] = (
            lambda v, c=codec: c.encode(_KEY, v),
            lambda b, c=codec: c.decode(_KEY, b).value,
        )
    return pairs


def _round_trip(pair: Pair, value: Any) -> Batch:
    encode, decode = pair

    def run(n: int) -> None:
        for _ in range(n):
            decode(encode(value))

    return run


def run_codec(cfg: Config) -> Table:
    """encode + decode of the small and large values per mode vs pickle and msgpack."""
    small, large = small_value(), large_value()
    table = Table(f"codec only, encode + decode, no network (median of {cfg.repeats} repeats; "
                  ">1x is faster than the baseline)", COLUMNS)
    for label, value, n, compressed in (
        ("small dict", small, cfg.n(20_000), False),
        (f"large HTML {len(large) // 1000} KB", large, cfg.n(300), True),
    ):
        pairs = _pairs(compressed)
        for name, (encode, decode) in pairs.items():
            if decode(encode(value)) != value:
                raise AssertionError(f"{name} does not round-trip the {label}")
        stats = measure({name: _round_trip(p, value) for name, p in pairs.items()},
                        n, cfg.repeats)
        p_base, m_base = stats["pickle"], stats["msgpack"]
        for name, (encode, _) in pairs.items():
            s = stats[name]
            table.add(label, name, f"{len(encode(value)):,}", fmt_rate(s.median),
                      fmt_us(s.median), fmt_spread(s), fmt_paired(p_base, s),
                      fmt_paired(m_base, s))
    return table
