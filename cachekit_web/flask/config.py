"""Flask configuration -> core Settings: app.config["CACHEKIT_<NAME>"], then the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core.client import DEFAULT
from ..core.data import crypto
from ..core.errors import ConfigurationError, combined
from ..core.foreign import ACCEPTED_FLASK_CACHING_KEYS, FLASK_CACHING_KEYS, advice
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

def translated(config: Mapping[str, Any],
               problems: list[ConfigurationError] | None = None) -> dict[str, Any]:
    """``config`` with accepted Flask-Caching keys renamed to ours; E041 when both
    spellings are given with different values (added to ``problems`` if given)."""
    out = dict(config)
    for key, (name, convert) in ACCEPTED_FLASK_CACHING_KEYS.items():
        if key not in out:
            continue
        value = convert(out.pop(key))
        ours = PREFIX + name
        if ours in out and out[ours] != value:
            error = ConfigurationError(f"{key} and {ours} are both set, to different values; "
                                       f"keep {ours}", code="E041", suggestion=True)
            if problems is None:
                raise error
            problems.append(error)
            continue
        out[ours] = value
    return out


def core_timeout(timeout: Any) -> Any:
    """A Flask-Caching timeout (None: the default, 0: forever) as the core's."""
    if timeout is None:
        return DEFAULT
    if timeout == 0:
        return None
    return timeout


def derived_signing_key(secret_key: str | bytes) -> str:
    """A signing key for cached values derived from Flask's SECRET_KEY (never the key itself)."""
    return crypto.derived_signing_key(secret_key, "flask")


def config_name_problems(config: Mapping[str, Any]) -> list[ConfigurationError]:
    """E041 for every unknown CACHEKIT_ key and every Flask-Caching key we do not read."""
    known = set(Settings.names()) | set(EXTRA_NAMES)
    problems: list[ConfigurationError] = []
    for key in config:
        if not isinstance(key, str):
            continue
        if key.startswith(PREFIX):
            if key[len(PREFIX):] not in known:
                problems.append(unknown_setting(key, known, PREFIX))
        elif key in FLASK_CACHING_KEYS:
            fix = FLASK_CACHING_KEYS[key]  # a replacement name, or "remove it..."
            problems.append(ConfigurationError(
                f"{key} is a Flask-Caching setting and is not read; {advice(fix)}",
                code="E041", suggestion=not fix.startswith("remove it")))
        elif key.startswith("CACHE_") and key not in ACCEPTED_FLASK_CACHING_KEYS:
            problems.append(ConfigurationError(
                f"{key} is not read by cachekit-web; its settings are named {PREFIX}<NAME> "
                "(see docs/flask.md)", code="E041"))
    return problems


def check_config_names(config: Mapping[str, Any]) -> None:
    """Raise E041 listing every unknown CACHEKIT_ key and every Flask-Caching key we do not read."""
    error = combined(config_name_problems(config))
    if error is not None:
        raise error


def load(
    config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> tuple[Settings, FlaskOptions]:
    """Build core Settings and Flask options from app.config, the environment as fallback."""
    env = os.environ if environ is None else environ
    problems: list[ConfigurationError] = []  # every one is reported, in one error
    config = translated(config, problems)
    problems += config_name_problems(config)
    known = set(Settings.names())
    overrides: dict[str, Any] = {}
    extras: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(key, str) and key.startswith(PREFIX):
            name = key[len(PREFIX):]
            if name in EXTRA_NAMES:
                extras[name] = value
            elif name in known:  # the unknown ones are among the problems already
                overrides[name] = value
    for name in EXTRA_NAMES:
        if name not in extras and PREFIX + name in env:
            extras[name] = env[PREFIX + name]
    if not overrides.get("MASTER_KEY") and not overrides.get("SIGNING_KEY") \
            and not env.get(PREFIX + "MASTER_KEY") and not env.get(PREFIX + "SIGNING_KEY") \
            and config.get("SECRET_KEY"):
        # The app's SECRET_KEY authenticates cached values when no cachekit key is given.
        overrides["SIGNING_KEY"] = derived_signing_key(config["SECRET_KEY"])
    try:
        settings = Settings.from_env(env, extra_names=EXTRA_NAMES, **overrides)
    except ConfigurationError as exc:
        problems.append(exc)
    for name in _BOOL_EXTRAS:
        if name in extras:
            try:
                extras[name] = coerce_bool(PREFIX + name, extras[name])
            except ConfigurationError as exc:
                problems.append(exc)
    if extras.get("HEALTH_TOKEN") == "":
        extras["HEALTH_TOKEN"] = None
    if extras.get("HEALTH_TOKEN") is not None:  # a guessable token would open the dashboard
        try:
            crypto.check_secret(str(extras["HEALTH_TOKEN"]), f"{PREFIX}HEALTH_TOKEN")
        except ConfigurationError as exc:
            problems.append(exc)
    prefix = extras.get("HEALTH_URL_PREFIX")
    if prefix is not None and not str(prefix).startswith("/"):
        problems.append(ConfigurationError(f"{PREFIX}HEALTH_URL_PREFIX must start with '/'",
                                           code="E042"))
    error = combined(problems)
    if error is not None:
        raise error
    return settings, FlaskOptions(**extras)
