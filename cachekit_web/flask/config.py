"""Flask configuration -> core Settings: app.config["CACHEKIT_<NAME>"], then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.data import crypto
from ..core.errors import ConfigurationError
from ..core.foreign import ACCEPTED_FLASK_CACHING_KEYS, FLASK_CACHING_KEYS
from ..core.settings import (
    ADAPTER_SETTINGS,
    ENV_PREFIX,
    Settings,
    coerce_bool,
    unknown_setting,
)

PREFIX = ENV_PREFIX  # "CACHEKIT_": one name per setting everywhere


@dataclass(frozen=True)
class FlaskOptions:
    """Settings only the Flask adapter reads (beyond the core Settings)."""

    HEALTH_ENABLED: bool = False
    HEALTH_URL_PREFIX: str = "/_cachekit/health"
    HEALTH_TOKEN: str | None = None
    SOURCE_CHECK: bool = False
    CACHE_STATUS_HEADER: bool = True

    def __repr__(self) -> str:
        token = "set" if self.HEALTH_TOKEN else "unset"
        return (f"FlaskOptions(HEALTH_ENABLED={self.HEALTH_ENABLED}, "
                f"HEALTH_URL_PREFIX={self.HEALTH_URL_PREFIX!r}, HEALTH_TOKEN={token}, "
                f"SOURCE_CHECK={self.SOURCE_CHECK}, "
                f"CACHE_STATUS_HEADER={self.CACHE_STATUS_HEADER})")


EXTRA_NAMES = tuple(ADAPTER_SETTINGS)  # the core keeps the one list of adapter-only names
_BOOL_EXTRAS = ("HEALTH_ENABLED", "SOURCE_CHECK", "CACHE_STATUS_HEADER")

def translated(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` with accepted Flask-Caching keys renamed to ours; E041 when both
    spellings are given with different values."""
    out = dict(config)
    for key, (name, convert) in ACCEPTED_FLASK_CACHING_KEYS.items():
        if key not in out:
            continue
        value = convert(out.pop(key))
        ours = PREFIX + name
        if ours in out and out[ours] != value:
            raise ConfigurationError(f"{key} and {ours} are both set, to different values; "
                                     f"keep {ours}", code="E041")
        out[ours] = value
    return out


def derived_signing_key(secret_key: str | bytes) -> str:
    """A signing key for cached values derived from Flask's SECRET_KEY (never the key itself)."""
    return crypto.derived_signing_key(secret_key, "flask")


def check_config_names(config: Mapping[str, Any]) -> None:
    """Raise E041 listing every unknown CACHEKIT_ key and every Flask-Caching key we do not read."""
    known = set(Settings.names()) | set(EXTRA_NAMES)
    problems: list[str] = []
    for key in config:
        if not isinstance(key, str):
            continue
        if key.startswith(PREFIX):
            if key[len(PREFIX):] not in known:
                problems.append(unknown_setting(key, known, PREFIX).message)
        elif key in FLASK_CACHING_KEYS:
            advice = FLASK_CACHING_KEYS[key]  # a replacement name, or "remove it..."
            advice = advice if advice.startswith("remove it") else f"use {advice}"
            problems.append(f"{key} is a Flask-Caching setting and is not read; {advice}")
        elif key.startswith("CACHE_") and key not in ACCEPTED_FLASK_CACHING_KEYS:
            problems.append(f"{key} is not read by cachekit-web; its settings are named "
                            f"{PREFIX}<NAME> (see docs/flask.md)")
    if problems:
        raise ConfigurationError("; ".join(problems), code="E041")


def load(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[Settings, FlaskOptions]:
    """Build core Settings and Flask options from app.config, the environment as fallback."""
    env = os.environ if environ is None else environ
    config = translated(config)
    check_config_names(config)
    overrides: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(key, str) and key.startswith(PREFIX):
            name = key[len(PREFIX):]
            (extras if name in EXTRA_NAMES else overrides)[name] = value
    for name in EXTRA_NAMES:
        if name not in extras and PREFIX + name in env:
            extras[name] = env[PREFIX + name]
    if not overrides.get("MASTER_KEY") and not overrides.get("SIGNING_KEY") \
            and not env.get(PREFIX + "MASTER_KEY") and not env.get(PREFIX + "SIGNING_KEY") \
            and config.get("SECRET_KEY"):
        # The app's SECRET_KEY authenticates cached values when no cachekit key is given.
        overrides["SIGNING_KEY"] = derived_signing_key(config["SECRET_KEY"])
    settings = Settings.from_env(env, extra_names=EXTRA_NAMES, **overrides)
    for name in _BOOL_EXTRAS:
        if name in extras:
            extras[name] = coerce_bool(PREFIX + name, extras[name])
    if extras.get("HEALTH_TOKEN") == "":
        extras["HEALTH_TOKEN"] = None
    if extras.get("HEALTH_TOKEN") is not None:  # a guessable token would open the dashboard
        crypto.check_secret(str(extras["HEALTH_TOKEN"]), f"{PREFIX}HEALTH_TOKEN")
    prefix = extras.get("HEALTH_URL_PREFIX")
    if prefix is not None and not str(prefix).startswith("/"):
        raise ConfigurationError(f"{PREFIX}HEALTH_URL_PREFIX must start with '/'", code="E042")
    return settings, FlaskOptions(**extras)
