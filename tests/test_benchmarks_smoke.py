"""The benchmark code still runs (its speed is not checked here: tests never time things)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_codec_benchmark_runs_and_prints_its_table() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--only", "codec"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"\|\s*benchmark\s*\|\s*contender\s*\|", out), out
    assert "vs pickle" in out and "vs msgpack" in out
    for contender in ("pickle", "msgpack", "cachekit plain", "cachekit signed",
                      "cachekit encrypted"):
        assert f"| {contender} " in out, contender


def test_unknown_section_is_refused() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--only", "nonsense"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 2
    assert "unknown section" in proc.stderr


@pytest.mark.parametrize("app", ["django", "flask"])
def test_outage_benchmark_runs_every_phase_without_errors(app: str, tmp_path: Path) -> None:
    out = tmp_path / "outage.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.outage", "--app", app, "--seconds", "0.4",
         "--warmup", "0.3", "--clients", "2", "--workers", "1", "--threads", "2", "--cycles", "2",
         # Redis is back (and hangs calls again) within the short phases: a shorter wait.
         "--set", "SOCKET_TIMEOUT=0.1", "--json", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    phases = json.loads(out.read_text())
    assert [p["phase"] for p in phases] == ["normal", "killed", "restarted", "hung", "resumed"]
    assert all(p["non_200"] == 0 for p in phases), phases
    # A request that meets the SIGSTOP can outlast a short hung phase on a loaded machine,
    # so that phase may start none; every other phase must have served some.
    assert all(p["requests"] > 0 for p in phases if p["phase"] != "hung"), phases
    assert "| hung |" in proc.stdout and "| hung vs killed, each cycle |" in proc.stdout
    # each cycle's share against its own normal phase; the median of two is their mean
    for p in phases:
        assert len(p["relative_per_cycle"]) == 2, p
        assert p["relative"] == pytest.approx(sum(p["relative_per_cycle"]) / 2), p
    assert phases[0]["relative_per_cycle"] == [1.0, 1.0]
    assert phases[0]["hits"] > 0 and "goals: " in proc.stdout  # hits are told apart
    assert all(len(p["first_hit_ms"]) == 2 for p in phases if p["phase"] in ("restarted",
                                                                            "resumed"))


def test_counters_benchmark_runs_every_contender_without_errors() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.counters", "--processes", "1", "--threads", "2",
         "--per-thread", "5", "--rounds", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for contender in ("django RedisCache", "cachekit sealed (signed)",
                      "cachekit sealed (encrypted)", "cachekit PLAIN_COUNTERS (signed)"):
        assert f"| {contender} |" in proc.stdout, contender
    assert "| NO |" not in proc.stdout


@pytest.mark.parametrize("hiredis", [False, True])
def test_django_wsgi_rows_run_and_the_tier_row_is_all_tier_hits(redis_url: str,
                                                                hiredis: bool) -> None:
    pytest.importorskip("django_redis")
    if hiredis:
        pytest.importorskip("hiredis")
    cmd = [sys.executable, "-m", "benchmarks.django_wsgi", redis_url, "1", "20"]
    done = subprocess.run(cmd if hiredis else [*cmd, "--no-hiredis"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["hiredis"] is hiredis
    assert got["tier_requests"] > 0 and got["tier_hits"] == got["tier_requests"]
    assert len(got["samples"]) == 4 and all(len(v) == 1 for v in got["samples"].values())
