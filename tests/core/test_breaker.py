"""The breaker's state machine, driven by a clock the test controls."""

from __future__ import annotations

import itertools
import os

import pytest

from cachekit_web.core.resilience.breaker import CircuitBreaker, ProbeGate, State


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
    assert b.state is State.HALF_OPEN  # one success is not yet a recovery
    assert b.allow() and not b.allow()  # the next caller confirms, still one at a time
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


# -- rates over a sliding window, slow calls, calls piling up (issue 9, items 10 and 11) --

def _rated(now: list[float], **kw: float) -> CircuitBreaker:
    opts: dict[str, float] = dict(failure_threshold=5, window=10, recovery_timeout=5,
                                  failure_rate=0.5, min_calls=10)
    opts.update(kw)
    return CircuitBreaker(clock=lambda: now[0], **opts)  # type: ignore[arg-type]


def test_interleaved_failures_open_on_the_failure_rate() -> None:
    now = [0.0]
    b = _rated(now)
    for i in range(9):  # fail, succeed, fail, ...: never two failures in a row
        b.record_failure() if i % 2 == 0 else b.record_success()
        assert b.state is State.CLOSED, i  # below MIN_CALLS the rate does not count
        now[0] += 0.1
    b.record_success()  # 10th call: 5 of 10 failed
    assert b.state is State.OPEN
    assert "5 of the last 10 calls failed" in b.transitions[-1].reason


def test_a_rate_below_the_threshold_stays_closed() -> None:
    now = [0.0]
    b = _rated(now)
    for i in range(100):  # one failure in three
        b.record_failure() if i % 3 == 0 else b.record_success()
        now[0] += 0.05
    assert b.state is State.CLOSED


def test_failures_older_than_the_window_leave_the_rate() -> None:
    now = [0.0]
    b = _rated(now)
    for _ in range(4):
        b.record_failure()
        b.record_success()
    now[0] += 11  # the window is 10 s: those 8 calls are forgotten
    for _ in range(9):
        b.record_success()
    b.record_failure()
    assert b.state is State.CLOSED
    assert b.snapshot()["window_calls"] == 10 and b.snapshot()["window_failures"] == 1


def test_consecutive_failures_still_open_below_min_calls() -> None:
    now = [0.0]
    b = _rated(now, min_calls=100)
    for _ in range(5):
        b.record_failure()
    assert b.state is State.OPEN


def test_slow_successes_open_on_the_slow_call_rate() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_call_rate=0.5)
    for i in range(10):
        call = b.begin()
        now[0] += 0.3 if i % 2 else 0.01  # every other call answers, but late
        b.record_success(call)
    assert b.state is State.OPEN
    assert "took 0.25s or longer" in b.transitions[-1].reason


def test_lock_waits_are_not_slow_calls() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_call_rate=0.5)
    for _ in range(20):
        now[0] += 1.0  # untimed calls (no token) never count as slow
        b.record_success()
    assert b.state is State.CLOSED and b.snapshot()["window_slow_calls"] == 0


def test_calls_piling_up_on_a_hung_server_open_at_once() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    stuck = [b.begin() for _ in range(3)]
    now[0] += 0.2
    assert b.allow()  # in flight, but not for long yet
    now[0] += 0.1
    assert not b.allow()  # three calls stuck for 0.3 s: the fourth caller does not wait
    assert b.state is State.OPEN and "3 calls in flight" in b.transitions[-1].reason
    for call in stuck:  # their timeouts arrive later and change nothing
        b.record_failure(call)
    assert b.opened_count == 1 and b.snapshot()["in_flight"] == 0


def test_finished_or_released_calls_are_not_in_flight() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=2)
    b.record_success(b.begin())
    b.release_probe(b.begin())
    b.begin()
    now[0] += 1
    assert b.allow() and b.state is State.CLOSED


def test_half_open_admits_exactly_one_probe_across_threads() -> None:
    import threading

    now = [0.0]
    b = _rated(now)
    for _ in range(5):
        b.record_failure()
    now[0] += 5
    start = threading.Barrier(16)
    admitted: list[bool] = []

    def caller() -> None:
        start.wait(5)
        admitted.append(b.allow())

    threads = [threading.Thread(target=caller) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert admitted.count(True) == 1 and len(admitted) == 16
    b.record_failure()  # the probe timed out: open again, one more probe after 5 s
    assert not b.allow()
    now[0] += 5
    assert b.allow() and not b.allow()


def test_slow_calls_in_flight_do_not_open_while_others_get_answers() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    for _ in range(5):
        b.begin()  # e.g. contended or queued calls
    for _ in range(5):
        now[0] += 0.1
        assert b.allow()
        b.record_success(b.begin())  # but the server still answers other calls
    assert b.state is State.CLOSED
    now[0] += 0.3  # no answer for 0.3 s now
    assert not b.allow() and b.state is State.OPEN


def test_a_call_timing_out_while_others_hang_opens_at_once() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    first, *others = [b.begin() for _ in range(3)]
    now[0] += 0.5
    b.record_failure(first)  # a timeout; the two others are still stuck: three in all
    assert b.state is State.OPEN and b.opened_count == 1
    for call in others:
        b.record_failure(call)
    assert b.opened_count == 1


def test_probe_now_lets_one_probe_through_before_the_recovery_timeout() -> None:
    """A new primary named by the topology is probed at once, not a recovery timeout later."""
    now = [100.0]
    b = _breaker(now)
    seen: list[str] = []
    b.add_listener(lambda t: seen.append(f"{t.old.value}>{t.new.value}:{t.reason}"))
    assert b.probe_now("nothing to do") is False  # closed: nothing to do
    for _ in range(3):
        b.record_failure()
    now[0] += 0.5  # far from the 5 s recovery timeout
    assert not b.allow()
    assert b.probe_now("new primary 127.0.0.1:7001") is True
    assert b.state is State.HALF_OPEN
    assert b.allow() and not b.allow()  # still one probe at a time
    b.record_failure()  # the probe failed: open again, for a full recovery timeout
    assert b.state is State.OPEN and not b.allow()
    assert b.probe_now("again") is True and b.allow()
    b.record_success()
    assert b.allow()
    b.record_success()
    assert b.state is State.CLOSED
    assert b.probe_now("late") is False
    assert "open>half_open:new primary 127.0.0.1:7001" in seen


# -- active recovery: background probes, backoff, flapping (issue 21) ---------------------

def _probed(now: list[float]) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=1, window=10, recovery_timeout=10,
                          clock=lambda: now[0])


def _probe_times(b: CircuitBreaker, now: list[float], until: float) -> list[float]:
    """Drive a prober whose probes all fail until ``until``: when each one went out."""
    sent: list[float] = []
    while now[0] < until:
        due = b.probe_in()
        assert due is not None
        now[0] += due
        assert b.start_probe()
        assert not b.start_probe()  # never two in flight
        assert b.probe_in() is None
        sent.append(now[0])
        b.probe_failed()
    return sent


def test_no_probe_is_wanted_while_closed_or_half_open() -> None:
    now = [0.0]
    b = _probed(now)
    assert b.probe_in() is None and not b.start_probe()
    b.record_failure()
    assert b.probe_in() == 0.25  # the first probe, a quarter second after opening
    assert not b.start_probe()
    now[0] += 0.25
    assert b.start_probe()
    b.probe_answered()
    assert b.state is State.HALF_OPEN and b.probe_in() is None


def test_a_probe_answered_half_opens_at_once_and_two_calls_close() -> None:
    now = [100.0]
    b = _probed(now)
    seen: list[str] = []
    b.add_listener(lambda t: seen.append(f"{t.old.value}>{t.new.value}"))
    b.record_failure()
    assert not b.allow()
    now[0] += 0.25
    assert b.start_probe()
    b.probe_answered()  # long before the 10 s recovery timeout
    assert b.allow() and not b.allow()
    b.record_success()
    assert b.allow()
    b.record_success()
    assert b.state is State.CLOSED
    assert seen == ["closed>open", "open>half_open", "half_open>closed"]
    assert b.snapshot()["probes_sent"] == 1


def test_probes_back_off_to_the_recovery_timeout_while_down() -> None:
    now = [0.0]
    b = _probed(now)
    b.record_failure()
    sent = _probe_times(b, now, 600.0)
    gaps = [round(b2 - a, 3) for a, b2 in itertools.pairwise([0.0, *sent])]
    assert gaps[:10] == [0.25] * 10  # every 250 ms at first
    assert all(0.25 <= g <= 10 for g in gaps)
    assert gaps == sorted(gaps)  # never closer together again while it stays down
    assert gaps[-1] == 10  # capped by the recovery timeout
    # A tenth of the outage: Redis answering after t seconds waits at most ~t/10 for a probe.
    for a, b2 in itertools.pairwise(sent):
        assert b2 - a <= max(0.25, 0.1 * b2) + 1e-9
    assert len(sent) < 100  # ten minutes down cost fewer than 100 probes
    in_first_second = [t for t in sent if t <= 1.0]
    assert len(in_first_second) <= 4


def test_a_failed_confirmation_reopens_with_the_backoff_not_afresh() -> None:
    """A flapping server: probes answer, real calls fail; the site is not flapped."""
    now = [0.0]
    b = _probed(now)
    b.record_failure()
    _probe_times(b, now, 30.0)  # down for 30 s: probes are ~3 s apart by now
    due = b.probe_in()
    assert due is not None
    now[0] += due
    assert b.start_probe()
    b.probe_answered()
    assert b.allow()
    b.record_failure()  # the confirming call failed: open again
    assert b.state is State.OPEN
    assert b.probe_in() == pytest.approx(0.1 * now[0])  # the backoff goes on, not 250 ms


def test_an_outage_soon_after_closing_continues_the_backoff() -> None:
    now = [0.0]
    b = _probed(now)
    b.record_failure()
    _probe_times(b, now, 20.0)
    now[0] += b.probe_in() or 0.0
    assert b.start_probe()
    b.probe_answered()
    for _ in range(2):
        assert b.allow()
        b.record_success()
    assert b.state is State.CLOSED
    now[0] += 1.0
    b.record_failure()  # down again before the next probe (~2 s) was due: the same outage
    assert (b.probe_in() or 0) > 1.0
    # Closed for longer than the backoff had reached: the next outage starts at 250 ms again.
    now[0] += b.probe_in() or 0.0
    assert b.start_probe()
    b.probe_answered()
    for _ in range(2):
        b.allow()
        b.record_success()
    now[0] += 3.0
    b.record_failure()
    assert b.probe_in() == 0.25


def test_a_probe_answered_after_the_breaker_moved_on_changes_nothing() -> None:
    now = [0.0]
    b = _probed(now)
    b.record_failure()
    now[0] += 0.25
    assert b.start_probe()
    b.reset()  # closed meanwhile
    b.probe_answered()
    assert b.state is State.CLOSED
    assert b.probe_in() is None


def test_disabled_breaker_never_probes() -> None:
    b = CircuitBreaker(enabled=False)
    b.record_failure()
    assert b.probe_in() is None and not b.start_probe()


def test_a_probe_gate_lets_one_probe_of_a_redis_out_for_every_breaker() -> None:
    now = [0.0]
    gate = ProbeGate(spacing=0.25, clock=lambda: now[0])
    assert gate.enter() == ProbeGate.SEND
    assert gate.enter() == ProbeGate.WAIT  # in flight
    now[0] += 0.5
    assert gate.enter() == ProbeGate.WAIT  # still in flight: no verdict yet
    gate.leave(False)
    assert gate.enter() == ProbeGate.SEND  # spacing passed since the last one went out
    now[0] += 0.1
    gate.leave(True)
    assert gate.enter() == ProbeGate.ANSWERED  # another breaker needs no PING of its own
    now[0] += 0.3
    assert gate.enter() == ProbeGate.SEND
    now[0] += 31  # a probe whose thread vanished is forgotten
    assert gate.enter() == ProbeGate.SEND


def test_a_postponed_probe_is_due_again_after_the_given_delay() -> None:
    now = [0.0]
    b = _probed(now)
    b.record_failure()
    now[0] += 0.25
    assert b.start_probe()
    b.probe_postponed(0.25)
    assert b.probe_in() == 0.25 and b.probes_sent == 0


def test_a_probe_in_flight_in_the_parent_does_not_stop_a_forked_child_probing() -> None:
    now = [0.0]
    b = _probed(now)
    b.record_failure()
    now[0] += 0.25
    assert b.start_probe()
    assert b.probe_in() is None  # the parent waits for its verdict
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's probe will never report here
        try:
            os.write(write, b"1" if b.probe_in() == 0.0 and b.start_probe() else b"0")
        finally:
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert b.probe_in() is None


def test_a_flapping_outage_is_one_outage_with_its_openings_counted() -> None:
    """61 re-openings: more than the transitions kept, yet one outage, from its first
    opening to its close, with every opening counted (the health charts draw it)."""
    now = [0.0]
    b = _breaker(now)
    for _ in range(3):
        b.record_failure()
    for _ in range(60):  # each probe fails: half-open, then open again
        now[0] += 5
        assert b.allow()
        b.record_failure()
        assert b.state is State.OPEN
    now[0] += 5
    for _ in range(2):
        assert b.allow()
        b.record_success()
    assert b.state is State.CLOSED and b.opened_count == 61
    assert len(b.transitions) == 50 < 2 * 61
    (outage,) = b.snapshot()["outages"]  # type: ignore[misc]
    assert outage["openings"] == 61
    assert outage["end"] is not None and outage["start"] <= outage["end"]
    for _ in range(3):  # a new outage later is a second one
        b.record_failure()
    assert [o["openings"] for o in b.outages] == [61, 1] and b.outages[-1]["end"] is None


# -- a timeout is evidence of a hang ------------------------------------------------------
def test_one_timeout_without_any_answer_meanwhile_opens_at_once() -> None:
    """One thread per process (or one busy with Redis): a call that waited its whole socket
    timeout while Redis answered nothing opens the breaker, not the fifth such call."""
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    b.record_success(b.begin())
    call = b.begin()
    now[0] += 0.5
    b.record_failure(call, timeout=True)
    assert b.state is State.OPEN
    assert "timed out" in b.transitions[-1].reason
    assert b.probe_in() == 0.25  # and the first probe follows 250 ms later


def test_a_timeout_while_other_calls_got_answers_only_counts() -> None:
    """A slow command on a live server: Redis answered another call meanwhile."""
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    call = b.begin()
    now[0] += 0.3
    b.record_success(b.begin())
    now[0] += 0.2
    b.record_failure(call, timeout=True)
    assert b.state is State.CLOSED and b.snapshot()["recent_failures"] == 1


def test_a_timeout_shorter_than_the_slow_call_duration_or_a_refusal_only_counts() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    call = b.begin()
    now[0] += 0.1  # a socket timeout below SLOW_CALL_DURATION is no evidence of a hang
    b.record_failure(call, timeout=True)
    call = b.begin()
    now[0] += 0.5
    b.record_failure(call)  # not a timeout (e.g. refused): the run of failures decides
    assert b.state is State.CLOSED and b.snapshot()["recent_failures"] == 2
    off = _rated(now, slow_call_duration=0, slow_in_flight=3)  # hang detection off
    call = off.begin()
    now[0] += 0.5
    off.record_failure(call, timeout=True)
    assert off.state is State.CLOSED


def test_a_server_hanging_again_soon_after_closing_continues_the_backoff() -> None:
    """Flapping protection holds for timeouts: a hang right after recovery is the same
    outage, so the probes keep their backoff rather than starting at 250 ms again."""
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3, recovery_timeout=10)
    call = b.begin()
    now[0] += 0.5
    b.record_failure(call, timeout=True)
    _probe_times(b, now, 20.0)
    now[0] += b.probe_in() or 0.0
    assert b.start_probe()
    b.probe_answered()
    for _ in range(2):
        assert b.allow()
        b.record_success(b.begin())
    assert b.state is State.CLOSED
    call = b.begin()
    now[0] += 0.5
    b.record_failure(call, timeout=True)
    assert b.state is State.OPEN and (b.probe_in() or 0) > 1.0


def test_the_watchdog_check_opens_on_stuck_calls_and_marks_the_hang() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    calls = [b.begin() for _ in range(3)]
    now[0] += 0.2
    assert not b.check_stuck() and b.state is State.CLOSED  # not stuck for long enough
    b.record_success(b.begin())  # an answer: contention, not a hang
    now[0] += 0.2
    assert not b.check_stuck()
    now[0] += 0.1
    assert b.check_stuck() and b.state is State.OPEN
    assert b.transitions[-1].hung and "3 calls in flight" in b.transitions[-1].reason
    assert not b.check_stuck()  # open already: nothing more
    for call in calls:
        b.record_failure(call)
    assert b.opened_count == 1


def test_other_openings_are_not_hangs() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    for _ in range(5):
        b.record_failure(b.begin())  # refused at once: a dead server, nothing to cut
    assert b.state is State.OPEN and not b.transitions[-1].hung
    b2 = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    first = b2.begin()
    now[0] += 0.5
    b2.record_failure(first, timeout=True)  # timed out while nothing answered: hung
    assert b2.state is State.OPEN and b2.transitions[-1].hung


def test_the_watchdog_lets_go_of_a_breaker_with_no_call_in_flight() -> None:
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=2)
    calls = [b.begin() for _ in range(2)]
    assert b._watched == os.getpid()  # two in flight: watched
    assert not b.unwatched()  # calls still in flight: it stays
    for call in calls:
        b.record_success(call)
    assert b.unwatched() and b._watched == 0
    b.begin()
    assert b._watched == 0  # one call alone is not a crowd
    b.begin()
    assert b._watched == os.getpid()  # a new crowd registers again


def test_the_watchdog_never_opens_before_redis_ever_answered() -> None:
    """A cold start (a Cluster client reading its slot map, connections being made) is slow,
    not hung: the watchdog acts only on a server that answered before and then stopped."""
    now = [0.0]
    b = _rated(now, slow_call_duration=0.25, slow_in_flight=3)
    calls = [b.begin() for _ in range(3)]
    now[0] += 0.5
    assert not b.check_stuck() and b.state is State.CLOSED
    for call in calls:
        b.record_success(call)
    calls = [b.begin() for _ in range(3)]
    now[0] += 0.5
    assert b.check_stuck() and b.state is State.OPEN
