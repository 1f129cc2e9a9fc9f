"""Django settings for the adapter's tests: the example site's settings, a temp sqlite db.

Each test points CACHES at the session's redis-server (its own namespace) or at
a private server it may kill, through the ``use_caches`` fixture.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import django
import pytest
from django.conf import settings

BACKEND = "cachekit_web.django.CachekitCache"
_DB_DIR = tempfile.mkdtemp(prefix="cachekit-django-tests-")


def _configure() -> None:
    if settings.configured:
        return
    from example_django import settings as example

    values = {k: getattr(example, k) for k in dir(example) if k.isupper()}
    values.update(
        DEBUG=False,
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3",
                               "NAME": str(Path(_DB_DIR) / "db.sqlite3")}},
        ROOT_URLCONF="tests.django.urls",
        CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        EXAMPLE_SLOW_SECONDS=0.2,
        LOGGING={"version": 1, "disable_existing_loggers": False},
    )
    settings.configure(**values)
    django.setup()


_configure()
_ENVIRONMENT: list[bool] = []


@pytest.fixture(scope="session", autouse=True)
def django_environment() -> Iterator[None]:
    """Django's test environment and a migrated database, once per session."""
    from django.core.management import call_command
    from django.test.utils import setup_test_environment, teardown_test_environment

    if _ENVIRONMENT:  # other directories (tests/security) reuse this fixture
        yield
        return
    _ENVIRONMENT.append(True)
    setup_test_environment()
    call_command("migrate", interactive=False, verbosity=0)
    yield
    teardown_test_environment()
    _ENVIRONMENT.clear()


@pytest.fixture(autouse=True)
def shared_clients_closed() -> Iterator[None]:
    """CachekitCache shares one client per configuration for the process: close those a
    test made (directly, not through use_caches) once it is done."""
    yield
    from cachekit_web.django.backend import reset_clients

    reset_clients()


def cache_conf(url: str, namespace: str, **options: Any) -> dict[str, Any]:
    """One CACHES entry for CachekitCache."""
    opts = {"NAMESPACE": namespace, "LOCK_WAIT": 2.0, **options}
    return {"BACKEND": BACKEND, "LOCATION": url, "OPTIONS": opts}


@pytest.fixture()
def use_caches() -> Iterator[Callable[..., Any]]:
    """Call with CACHES (and other settings) to apply them for the rest of the test."""
    from django.test import override_settings

    from cachekit_web.django.backend import reset_clients

    applied: list[Any] = []

    def apply(caches: dict[str, Any], **more: Any) -> Any:
        ctx = override_settings(CACHES=caches, **more)
        ctx.enable()
        applied.append(ctx)
        from django.core.cache import cache

        return cache

    yield apply
    for ctx in reversed(applied):
        ctx.disable()
    reset_clients()


@pytest.fixture()
def cache(use_caches: Callable[..., Any], redis_url: str, namespace: str) -> Any:
    """The default Django cache, a CachekitCache on the shared test server."""
    backend = use_caches({"default": cache_conf(redis_url, namespace)})
    backend.clear()
    return backend
