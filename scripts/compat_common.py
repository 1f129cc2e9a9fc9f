"""What the third-party suite runners (flask_caching_compat, django_redis_compat) share."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Outcome:
    """What one run of their suite gave."""

    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """The one-line count."""
        return f"{len(self.passed)} passed, {len(self.failed)} failed" + (
            f", {len(self.skipped)} skipped" if self.skipped else "")


def cache_dir() -> Path:
    """Where downloaded sdists are kept between runs."""
    env = os.environ.get("CACHEKIT_COMPAT_CACHE")
    if env:
        return Path(env)
    venv = ROOT / ".venv"
    return (venv / ".cache" if venv.is_dir() else Path.home() / ".cache") / "cachekit-compat"


def fetch_sdist(requirement: str, filename: str, offline: bool = False) -> Path | None:
    """The sdist ``filename`` of ``requirement``, downloaded with pip unless cached (None if
    it cannot be had)."""
    target = cache_dir()
    path = target / filename
    if path.is_file() or offline:
        return path if path.is_file() else None
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
         "-d", str(target), requirement],
        capture_output=True, timeout=120, check=False)
    return path if done.returncode == 0 and path.is_file() else None
