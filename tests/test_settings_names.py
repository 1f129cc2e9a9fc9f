"""Adapter-only setting names are known to the core and documented once."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from cachekit_web import CacheClient
from cachekit_web.core.errors import ConfigurationError
from cachekit_web.core.settings import ADAPTER_SETTINGS, Settings, check_env_names


def test_core_accepts_adapter_names_in_the_environment() -> None:
    env = {"CACHEKIT_HEALTH_TOKEN": "t0ken", "CACHEKIT_REDIS_URL": "memory://names"}
    settings = Settings.from_env(env)
    assert settings.REDIS_URL == "memory://names"
    CacheClient(settings).close()


def test_typos_of_adapter_names_are_still_reported() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_env_names({"CACHEKIT_HEALTH_TOKN": "x"})
    assert info.value.code == "E041"
    assert "HEALTH_TOKEN" in info.value.message


def test_flask_options_match_the_core_list() -> None:
    from cachekit_web.flask.config import FlaskOptions

    defaults = FlaskOptions()
    assert {f.name for f in dataclasses.fields(FlaskOptions)} == set(ADAPTER_SETTINGS)
    for name, (shown, _) in ADAPTER_SETTINGS.items():
        value = getattr(defaults, name)
        assert ("" if value is None else str(value)) == shown, name


def test_doctor_runs_with_a_flask_setting_in_the_environment(redis_url: str) -> None:
    env = {"PATH": "/usr/bin:/bin", "CACHEKIT_HEALTH_ENABLED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "cachekit_web.cli", "doctor", redis_url],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout
