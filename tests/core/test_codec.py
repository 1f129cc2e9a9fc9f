"""Codec round trips: every supported type comes back with its exact type and value."""

from __future__ import annotations

import datetime as dt
import math
import uuid
import zoneinfo
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cachekit_web.core.data.codec import Codec
from cachekit_web.core.data.crypto import KeyRing

from .conftest import KEY_A, SIGNING, MakeClient

MODES = {
    "plain": {},
    "signed": {"signing_key": SIGNING},
    "encrypted": {"master_key": KEY_A},
}


def codec_for(mode: str) -> Codec:
    return Codec(KeyRing(namespace="codec-test", **MODES[mode]), compress_min_size=64)


def assert_same(a: Any, b: Any) -> None:
    """Deep equality that also checks every type, tz, fold, float sign and Decimal form."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, float):
        if math.isnan(a):
            assert math.isnan(b)
        else:
            assert a == b and math.copysign(1, a) == math.copysign(1, b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, Decimal):
        assert str(a) == str(b)
    elif isinstance(a, (dt.datetime, dt.time)):
        assert a.replace(tzinfo=None) == b.replace(tzinfo=None)
        assert a.fold == b.fold
        assert a.tzinfo == b.tzinfo
        assert a.tzname() == b.tzname()
        if a.tzinfo is not None and isinstance(a, dt.datetime):
            assert a.utcoffset() == b.utcoffset()
    else:
        assert a == b


_offsets = st.timedeltas(min_value=-dt.timedelta(hours=23, minutes=59),
                        max_value=dt.timedelta(hours=23, minutes=59))
fixed_offsets = st.one_of(
    st.builds(dt.timezone, _offsets),
    st.builds(dt.timezone, _offsets, st.text(min_size=1, max_size=6)),  # named: "CET"
    st.just(dt.timezone.utc),
)
_ZONE_NAMES = [*sorted(zoneinfo.available_timezones())[:80], "Europe/Paris", "America/New_York",
               "Australia/Lord_Howe", "UTC"]
zones = st.sampled_from(_ZONE_NAMES).map(zoneinfo.ZoneInfo)
tzs = st.one_of(st.none(), fixed_offsets, zones)

hashables = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1), st.text(max_size=8),
    st.binary(max_size=8),
    st.booleans(), st.none(), st.uuids(),
)
scalars = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=40),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.integers().filter(lambda i: not -(2**63) <= i < 2**64),  # bigint fallback path
    st.integers(min_value=2**64, max_value=2**200),
    st.integers(min_value=-(2**200), max_value=-(2**63) - 1),
    st.floats(allow_nan=True),
    st.booleans(),
    st.none(),
    st.datetimes(timezones=tzs),
    st.dates(),
    st.times(timezones=tzs),
    st.timedeltas(),
    st.decimals(allow_nan=True),
    st.uuids(),
    st.sets(hashables, max_size=5),
    st.frozensets(hashables, max_size=5),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.one_of(st.text(max_size=8), st.integers(-5, 5)), inner, max_size=4),
        st.dictionaries(st.tuples(st.integers(0, 3), st.text(max_size=3)), inner, max_size=3),
    ),
    max_leaves=12,
)


@pytest.mark.parametrize("mode", list(MODES))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=values)
def test_codec_round_trip(mode: str, value: Any) -> None:
    codec = codec_for(mode)
    frame = codec.encode(b"ns:key", value)
    assert_same(value, codec.decode(b"ns:key", frame).value)


@pytest.mark.parametrize("mode", list(MODES))
def test_codec_explicit_examples(mode: str) -> None:
    codec = codec_for(mode)
    paris = zoneinfo.ZoneInfo("Europe/Paris")
    examples: list[Any] = [
        (1, 2, (3, [4, (5,)])),
        {"when": dt.datetime(2024, 3, 31, 2, 30, tzinfo=paris), "d": dt.date(2000, 1, 1)},
        dt.datetime(2021, 11, 7, 1, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("America/New_York")),
        dt.time(23, 59, 59, 999999, tzinfo=dt.timezone(dt.timedelta(hours=-5, minutes=-30))),
        dt.timedelta(days=-3, microseconds=7),
        dt.datetime(2024, 6, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
        dt.time(1, 2, tzinfo=dt.timezone.utc),
        Decimal("-0.000"), Decimal("1E+30"), Decimal("sNaN"), Decimal("-Infinity"),
        uuid.UUID(int=0), {uuid.uuid4(), 3, "x"}, frozenset({b"a", (1, 2)}),
        2**64, -(2**63) - 1, 10**100, -(10**100), 2**63 - 1, True, False, 0, -0.0,
        float("inf"), float("nan"), None, [None, [None]], "é" * 2000, b"\0" * 5000,
        {1: "int key", "1": "str key", b"1": "bytes key"},
    ]
    for value in examples:
        assert_same(value, codec.decode(b"ns:key", codec.encode(b"ns:key", value)).value)


@pytest.mark.parametrize("mode", ["plain", "signed", "encrypted"])
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(value=values)
def test_round_trip_through_redis(make_client: MakeClient, mode: str, value: Any) -> None:
    extra = {"plain": {}, "signed": {"SIGNING_KEY": SIGNING},
             "encrypted": {"MASTER_KEY": KEY_A}}[mode]
    client = _cached_client(make_client, mode, extra)
    assert client.set("v", value, 30) is True
    got = client.get_many(["v"])
    assert "v" in got
    assert_same(value, got["v"])


_clients: dict[tuple[int, str], Any] = {}


def _cached_client(make_client: MakeClient, mode: str, extra: dict[str, str]) -> Any:
    # Hypothesis reuses the function-scoped fixture across examples; build one client per mode.
    slot = (id(make_client), mode)
    if slot not in _clients:
        _clients.clear()
        _clients[slot] = make_client(**extra)
    return _clients[slot]


def test_tuple_stays_tuple_and_list_stays_list() -> None:
    codec = codec_for("plain")
    out = codec.decode(b"k", codec.encode(b"k", {"t": (1, [2, (3,)]), "l": [(1,), [2]]})).value
    assert type(out["t"]) is tuple and type(out["t"][1]) is list and type(out["t"][1][1]) is tuple
    assert type(out["l"][0]) is tuple and type(out["l"][1]) is list


def test_plain_mode_refuses_pickle_fallback() -> None:
    from cachekit_web import SerializationError

    class Thing:
        pass

    with pytest.raises(SerializationError) as info:
        codec_for("plain").encode(b"k", Thing())
    assert info.value.code == "E020" and isinstance(info.value, TypeError)


@pytest.mark.parametrize("mode", ["signed", "encrypted"])
def test_pickle_fallback_in_sealed_modes(mode: str) -> None:
    codec = codec_for(mode)
    value = _Point(1, 2)
    assert codec.decode(b"k", codec.encode(b"k", value)).value == value


class _Point:
    def __init__(self, x: int, y: int) -> None:
        self.x, self.y = x, y

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Point) and (self.x, self.y) == (other.x, other.y)

    __hash__ = None  # type: ignore[assignment]
