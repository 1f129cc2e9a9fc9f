"""Timing, statistics, sample values and table output shared by the sections."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

# One timed batch: run the operation n times (the loop lives inside, like timeit).
Batch = Callable[[int], object]


@dataclass(frozen=True)
class Config:
    """How hard to push: repeats per measurement and a scale factor on batch sizes."""

    repeats: int = 7
    scale: float = 1.0
    quick: bool = False

    def n(self, full: int) -> int:
        """Batch size for a measurement whose full-run size is ``full``."""
        return max(1, int(full * self.scale))


@dataclass(frozen=True)
class Stat:
    """Seconds per operation over the repeats."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median seconds per operation."""
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Half the min-max range, relative to the median (0.05 = +-5%)."""
        if len(self.samples) < 2 or self.median == 0:
            return 0.0
        return (max(self.samples) - min(self.samples)) / 2 / self.median


def measure(batches: dict[str, Batch], n: int, repeats: int, warmup: int = 1,
            slices: int = 10) -> dict[str, Stat]:
    """Time every batch ``repeats`` times; returns seconds per operation per contender.

    Each repeat is cut into ``slices`` rounds; every round runs each contender once
    (rotating order), so a burst of load from elsewhere on a shared machine lands on
    all contenders alike instead of on whichever happened to be running.
    """
    names = list(batches)
    for name in names:
        for _ in range(warmup):
            batches[name](max(1, n // 10))
    slices = max(1, min(slices, n))
    per_slice = max(1, n // slices)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        spent = dict.fromkeys(names, 0.0)
        for s in range(slices):
            k = (r * slices + s) % len(names)
            for name in names[k:] + names[:k]:
                spent[name] += _timed(batches[name], per_slice)
        for name in names:
            samples[name].append(spent[name] / (per_slice * slices))
    return {name: Stat(tuple(s)) for name, s in samples.items()}


def _timed(batch: Batch, n: int) -> float:
    gc_was_on = gc.isenabled()
    gc.disable()  # as timeit does: a collection landing in one sample is noise
    try:
        start = time.perf_counter()
        batch(n)
        return time.perf_counter() - start
    finally:
        if gc_was_on:
            gc.enable()


def small_value() -> dict[str, object]:
    """A typical small cached object: a dict of ten JSON-like fields (~300 bytes pickled)."""
    return {
        "id": 482913,
        "username": "ada.lovelace",
        "email": "ada@example.org",
        "is_active": True,
        "score": 98.25,
        "tags": ["admin", "beta", "reviewer"],
        "joined": "2025-03-14T09:26:53+00:00",
        "bio": "Writes about analytical engines and the poetry of numbers.",
        "followers": 12876,
        "prefs": {"theme": "dark", "lang": "en", "tz": "Europe/London"},
    }


def large_value(size: int = 100_000) -> str:
    """A rendered HTML page of about ``size`` characters: repetitive, so it compresses well."""
    head = "<!doctype html><html><head><title>Catalogue</title></head><body><table>\n"
    tail = "</table></body></html>\n"
    rows: list[str] = []
    length = len(head) + len(tail)
    i = 0
    while length < size:
        row = (
            f'<tr class="row-{i % 2}"><td class="sku">SKU-{i * 7919 % 100000:05d}</td>'
            f'<td class="name"><a href="/products/{i}/">Product number {i}</a></td>'
            f'<td class="price">{(i * 37) % 1000}.{i % 100:02d} EUR</td>'
            f'<td class="stock">{(i * 13) % 250}</td></tr>\n'
        )
        rows.append(row)
        length += len(row)
        i += 1
    return head + "".join(rows) + tail


class Table:
    """A markdown table printed with aligned columns (pasteable into the README)."""

    def __init__(self, title: str, columns: Sequence[str]) -> None:
        self.title = title
        self.columns = list(columns)
        self.rows: list[list[str]] = []

    def add(self, *cells: object) -> None:
        """Append one row; cells are formatted with str()."""
        self.rows.append([str(c) for c in cells])

    def render(self) -> str:
        """The table as aligned markdown, preceded by its title."""
        widths = [len(c) for c in self.columns]
        left = {0, 1} | {i for i, c in enumerate(self.columns) if c == "note"}
        for row in self.rows:
            for i, cell in enumerate(row):
                widths[i] = max(widths[i], len(cell))

        def line(cells: Sequence[str]) -> str:
            out = []
            for i, cell in enumerate(cells):
                # Text columns left, numbers right.
                out.append(cell.ljust(widths[i]) if i in left else cell.rjust(widths[i]))
            return "| " + " | ".join(out) + " |"

        sep = "|" + "|".join("-" * (w + 2) if i in left else "-" * (w + 1) + ":"
                             for i, w in enumerate(widths)) + "|"
        return "\n".join([f"### {self.title}", "", line(self.columns), sep,
                          *(line(r) for r in self.rows), ""])


def fmt_rate(seconds_per_op: float) -> str:
    """Operations per second, grouped by thousands."""
    return f"{1 / seconds_per_op:,.0f}" if seconds_per_op > 0 else "inf"


def fmt_us(seconds: float) -> str:
    """Microseconds with sensible precision."""
    us = seconds * 1e6
    if us >= 100:
        return f"{us:,.0f}"
    if us >= 10:
        return f"{us:.1f}"
    return f"{us:.2f}"


def fmt_duration(seconds: float) -> str:
    """A duration in the unit that reads best: us below a millisecond, else ms."""
    return f"{fmt_us(seconds)} us" if seconds < 1e-3 else f"{seconds * 1000:,.0f} ms"


def fmt_ratio(base_seconds: float, seconds: float) -> str:
    """Speed relative to the baseline: >1 means faster than it."""
    if seconds <= 0:
        return "-"
    ratio = base_seconds / seconds
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def fmt_paired(base: Stat, stat: Stat) -> str:
    """Speed relative to the baseline, as the median of per-repeat ratios.

    The contenders run interleaved within each repeat, so pairing the samples of
    one repeat cancels slow drift in machine load better than a ratio of medians.
    """
    if len(base.samples) != len(stat.samples) or min(stat.samples) <= 0:
        return fmt_ratio(base.median, stat.median)
    ratio = statistics.median(b / s for b, s in zip(base.samples, stat.samples, strict=True))
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.2g}x"


def fmt_spread(stat: Stat) -> str:
    """The spread of the repeats, as +-percent."""
    return f"+-{stat.spread * 100:.0f}%"
