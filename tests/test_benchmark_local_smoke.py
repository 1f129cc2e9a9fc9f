"""benchmarks.local still runs (its speed is not checked here: tests never time things)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_local_benchmark_runs_and_prints_its_two_tables() -> None:
    proc = subprocess.run([sys.executable, "-m", "benchmarks.local", "--quick", "--runs", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "tier hit (str, shared)" in proc.stdout
    assert "invalidation across processes" in proc.stdout
