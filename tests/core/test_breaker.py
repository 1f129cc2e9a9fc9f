"""The breaker's state machine, driven by a clock the test controls."""

from __future__ import annotations

from cachekit_web.core.breaker import CircuitBreaker, State


def _breaker(now: list[float]) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, window=10, recovery_timeout=5,
                          half_open_max_calls=1, clock=lambda: now[0])


def test_opens_after_threshold_failures_and_recovers_through_one_probe() -> None:
    now = [100.0]
    b = _breaker(now)
    for _ in range(3):
        assert b.allow()
        b.record_failure()
    assert b.state is State.OPEN and not b.allow()
    now[0] += 5
    assert b.allow()  # the one probe
    assert not b.allow()  # a second caller waits for its verdict
    b.record_success()
    assert b.state is State.CLOSED and b.opened_count == 1


def test_a_success_ends_a_run_of_failures() -> None:
    now = [0.0]
    b = _breaker(now)
    b.record_failure()
    b.record_failure()
    b.record_success()
    b.record_failure()
    assert b.state is State.CLOSED


def test_a_failed_probe_reopens_and_counts_as_an_opening() -> None:
    now = [0.0]
    b = _breaker(now)
    for _ in range(3):
        b.record_failure()
    now[0] += 5
    assert b.allow()
    b.record_failure()
    assert b.state is State.OPEN and b.opened_count == 2
    assert [t.new for t in b.transitions] == [State.OPEN, State.HALF_OPEN, State.OPEN]
