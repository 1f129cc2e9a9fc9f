"""The benchmark code still runs (its speed is not checked here: tests never time things)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

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
