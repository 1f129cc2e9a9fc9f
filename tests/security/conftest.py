"""Fixtures for the hostile-data tests: the Flask and Django adapters' own fixtures."""

from __future__ import annotations

from tests.django.conftest import cache, django_environment, use_caches  # noqa: F401
from tests.flask.conftest import make_app  # noqa: F401
