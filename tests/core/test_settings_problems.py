"""E041/E042 name every settings problem in one error: one line each, with its fix."""

from __future__ import annotations

import logging
import os

import pytest

from cachekit_web import Settings
from cachekit_web.cli import main
from cachekit_web.core.errors import ConfigurationError
from cachekit_web.core.foreign import DJANGO_REDIS_OPTIONS, translate


def _lines(exc: ConfigurationError) -> list[str]:
    return [line for line in exc.message.splitlines()[1:] if line.strip()]


def test_every_unknown_name_and_bad_value_in_one_error() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"SOCKET_TIMOUT": 1, "NAMESPAC": "x", "RETRIES": "many",
                               "LOCK_WAIT": -1, "FROBNICATE": 1})
    exc = info.value
    assert exc.code == "E041"
    message = exc.message
    for part in ("SOCKET_TIMOUT", "did you mean SOCKET_TIMEOUT", "NAMESPAC", "NAMESPACE",
                 "[E042]", "RETRIES", "LOCK_WAIT must be > 0", "FROBNICATE"):
        assert part in message, part
    assert len(_lines(exc)) == 5, message
    frob = next(line for line in _lines(exc) if "FROBNICATE" in line)
    assert "remove it" in frob  # no suggestion: its fix is said all the same


def test_only_bad_values_keep_e042() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_mapping({"RETRIES": 9, "SOCKET_TIMEOUT": 0})
    assert info.value.code == "E042"
    assert "RETRIES" in info.value.message and "SOCKET_TIMEOUT" in info.value.message


def test_environment_typos_are_all_named_at_once() -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({"CACHEKIT_REDIS_ULR": "redis://x", "CACHEKIT_NAMESPAC": "n",
                           "CACHEKIT_RETRIES": "lots"})
    message = info.value.message
    assert "CACHEKIT_REDIS_URL" in message and "CACHEKIT_NAMESPACE" in message
    assert "CACHEKIT_RETRIES" in message


def test_a_leftover_flask_caching_variable_is_a_warning(
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from cachekit_web.core import settings as settings_module

    monkeypatch.setattr(settings_module, "_WARNED", set())  # logged once per process
    with caplog.at_level(logging.WARNING, logger="cachekit_web"):
        settings = Settings.from_env({"CACHE_REDIS_URL": "redis://x/0",
                                      "CACHEKIT_REDIS_URL": "redis://y/0"})
    assert settings.REDIS_URL == "redis://y/0"
    assert "CACHE_REDIS_URL" in caplog.text and "CACHEKIT_REDIS_URL" in caplog.text


def test_foreign_advice_reads_as_english() -> None:
    with pytest.raises(ConfigurationError) as info:
        translate("CONNECTION_POOL_KWARGS", {"retry_on_timeout": True, "bogus": 1},
                  DJANGO_REDIS_OPTIONS, "OPTIONS: ")
    message = info.value.message
    assert "use remove" not in message
    assert "retry_on_timeout" in message and "bogus" in message


def test_doctor_names_every_problem(capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for var in [v for v in os.environ if v.startswith("CACHEKIT_")]:
        monkeypatch.delenv(var)
    monkeypatch.setenv("CACHEKIT_SOCKET_TIMOUT", "1")
    monkeypatch.setenv("CACHEKIT_NAMESPAC", "x")
    monkeypatch.setenv("CACHEKIT_RETRIES", "9")
    monkeypatch.setenv("CACHE_REDIS_URL", "redis://x/0")
    assert main(["doctor", "memory://"]) == 1
    out = capsys.readouterr().out
    for part in ("CACHEKIT_SOCKET_TIMEOUT", "CACHEKIT_NAMESPACE", "RETRIES"):
        assert part in out, out
    assert "CACHE_REDIS_URL" in out  # the warning, among the notes
