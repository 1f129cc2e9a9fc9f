"""benchmarks.tracking still runs (its figures are not checked here: tests never time things)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_tracking_benchmark_runs_and_prints_its_three_tables() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.tracking", "--quick"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "write fan-out (BCAST)" in out
    assert "staleness across processes" in out
    assert "memory bound" in out
    assert "goals: fan-out: no goal" in out
    assert "staleness: " in out and "memory bound: " in out
    # Fan-out: a row per tracker count; staleness: per count and reader; memory: per cap.
    rows = [line for line in out.splitlines() if line.startswith("| ")]
    assert sum(line.startswith(("| 0 ", "| 2 ")) for line in rows) == 6
    assert sum("| tight loop " in line for line in rows) == 2
    assert sum(line.startswith("| rows ") for line in rows) == 3  # no tier, 1 MiB, 8 MiB
    assert sum(line.startswith("| page ") for line in rows) == 2
