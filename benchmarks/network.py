"""Sections 1 and 2: get/set and get_many over a real local Redis, per contender."""

from __future__ import annotations

import pickle
from collections.abc import Sequence
from typing import Any

from .contenders import Contender
from .harness import (
    Batch,
    Config,
    Stat,
    Table,
    fmt_paired,
    fmt_rate,
    fmt_spread,
    fmt_us,
    large_value,
    measure,
    small_value,
)

COLUMNS = ("benchmark", "contender", "ops/s", "us/op", "spread", "vs raw")
_KEYS = 64  # distinct keys cycled through, so every op is a real round trip to one entry


def _check(contender: Contender, key: str, value: Any) -> None:
    got = contender.get(key)
    if got != value:
        raise AssertionError(f"{contender.name} returned a different value for {key!r}")


def _getter(c: Contender, keys: Sequence[str]) -> Batch:
    count = len(keys)

    def run(n: int) -> None:
        get = c.get
        for i in range(n):
            get(keys[i % count])

    return run


def _setter(c: Contender, keys: Sequence[str], value: Any) -> Batch:
    count = len(keys)

    def run(n: int) -> None:
        put = c.set
        for i in range(n):
            put(keys[i % count], value)

    return run


def _rows(table: Table, label: str, contenders: Sequence[Contender],
          stats: dict[str, Stat]) -> None:
    base = stats[contenders[0].name]
    for c in contenders:
        s = stats[c.name]
        table.add(label, c.name, fmt_rate(s.median), fmt_us(s.median), fmt_spread(s),
                  fmt_paired(base, s))


def run_getset(contenders: Sequence[Contender], cfg: Config) -> Table:
    """Single-key get and set of a small dict and a ~100 KB HTML string."""
    small, large = small_value(), large_value()
    cases = [
        (f"small (dict, {len(pickle.dumps(small))} B pickled)", "small", small, cfg.n(1500)),
        (f"large (HTML, {len(large) // 1000} KB)", "large", large, cfg.n(150)),
    ]
    table = Table(f"get/set over local Redis (median of {cfg.repeats} repeats; "
                  "vs raw: >1x is faster than raw redis-py + pickle)", COLUMNS)
    for label, tag, value, n in cases:
        keys = [f"{tag}:{i}" for i in range(_KEYS)]
        set_stats = measure({c.name: _setter(c, keys, value) for c in contenders},
                            n, cfg.repeats)
        for c in contenders:
            _check(c, keys[0], value)
        get_stats = measure({c.name: _getter(c, keys) for c in contenders}, n, cfg.repeats)
        _rows(table, f"get {label}", contenders, get_stats)
        _rows(table, f"set {label}", contenders, set_stats)
    return table


def run_get_many(contenders: Sequence[Contender], cfg: Config) -> Table:
    """get_many of 100 small values in one round trip."""
    value = small_value()
    keys = [f"many:{i}" for i in range(100)]
    for c in contenders:
        for k in keys:
            c.set(k, value)
        found = c.get_many(keys)
        if len(found) != len(keys) or found[keys[-1]] != value:
            raise AssertionError(f"{c.name}: get_many found {len(found)} of {len(keys)}")

    def batch(c: Contender) -> Batch:
        def run(n: int) -> None:
            many = c.get_many
            for _ in range(n):
                many(keys)
        return run

    stats = measure({c.name: batch(c) for c in contenders}, cfg.n(150), cfg.repeats)
    table = Table(f"get_many of 100 small values, one round trip (median of {cfg.repeats} "
                  "repeats; ops = calls)", COLUMNS)
    _rows(table, "get_many x100 small", contenders, stats)
    return table
