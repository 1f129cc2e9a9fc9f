"""The per-node guard of Cluster and Sentinel replicas: probes on the breaker's backoff."""

from __future__ import annotations

import itertools

from cachekit_web.core.backends.topology import NodeGuard


def _guard(now: list[float]) -> NodeGuard:
    return NodeGuard(5.0, clock=lambda: now[0])


def test_a_lost_node_is_probed_after_250_ms_then_on_a_backoff() -> None:
    now = [0.0]
    g = _guard(now)
    assert g.admit("a")
    g.failed("a")
    assert not g.admit("a")
    now[0] += 0.25
    assert g.admit("a")  # the probe
    assert not g.admit("a")  # one at a time
    g.failed("a")
    probes = [now[0]]
    while now[0] < 120:  # bounded: two minutes in 10 ms steps
        now[0] = round(now[0] + 0.01, 2)
        if g.admit("a"):
            probes.append(now[0])
            g.failed("a")
    gaps = [b - a for a, b in itertools.pairwise(probes)]
    assert all(0.25 - 1e-9 <= gap <= max(0.26, 0.1 * t + 0.01) for gap, t in
               zip(gaps, probes[1:], strict=True))
    assert max(gaps) <= 5.0 + 0.01  # capped by retry_after
    assert len(probes) < 80  # two minutes down cost fewer than 80 probes


def test_a_node_that_answers_rejoins_and_starts_afresh_next_time() -> None:
    now = [0.0]
    g = _guard(now)
    g.failed("a")
    now[0] += 30
    assert g.admit("a")
    assert g.ok("a") and not g.is_down("a") and g.admit("a")
    g.failed("a")
    assert not g.admit("a")
    now[0] += 0.25
    assert g.admit("a")  # a new outage: 250 ms again, not 3 s


def test_a_probe_without_a_verdict_does_not_block_the_node_for_ever() -> None:
    now = [0.0]
    g = _guard(now)
    g.failed("a")
    now[0] += 0.25
    assert g.admit("a")  # its call ends without ok() or failed() (e.g. cancelled)
    now[0] += 1.0
    assert not g.admit("a")
    now[0] += 5.0
    assert g.admit("a")
