"""Redis integers: what INCRBY reads as a number, and what a 64-bit counter may hold."""

from __future__ import annotations

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def redis_int(raw: bytes) -> int | None:
    """The integer a Redis string holds as INCRBY would read it (64-bit, canonical), else None."""
    if not 0 < len(raw) <= 20 or not raw.lstrip(b"-").isdigit() or raw.startswith(b"--"):
        return None
    digits = raw.lstrip(b"-")
    if (len(digits) > 1 and digits.startswith(b"0")) or raw == b"-0":
        return None
    n = int(raw)
    return n if INT64_MIN <= n <= INT64_MAX else None


def is_int64(value: object) -> bool:
    """Whether ``value`` is a plain int (not bool) that Redis can hold as an integer."""
    return type(value) is int and INT64_MIN <= value <= INT64_MAX
