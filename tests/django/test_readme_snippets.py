"""The README's Django snippets work when pasted into a project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpResponse
from django.test import RequestFactory

from tests.test_docs import README_URL, snippet


def test_readme_django_snippets_work(use_caches: Callable[..., Any], redis_url: str,
                                     namespace: str) -> None:
    settings_code = snippet('"BACKEND": "cachekit_web.django.CachekitCache"')
    assert README_URL in settings_code
    project: dict[str, Any] = {"INSTALLED_APPS": ["django.contrib.contenttypes"]}
    exec(settings_code.replace(README_URL, redis_url), project)
    assert project["INSTALLED_APPS"][-1] == "cachekit_web.django"
    caches = project["CACHES"]
    caches["default"]["OPTIONS"]["NAMESPACE"] = namespace
    cache = use_caches(caches)
    cache.set("k", {"v": 1})
    assert cache.get("k") == {"v": 1}

    views: dict[str, Any] = {}
    exec(snippet("from cachekit_web.django import cache_page").replace(
        "def article(request, slug): ...",
        "def article(request, slug):\n    return HttpResponse(f'article {slug}')"),
        {"HttpResponse": HttpResponse}, views)
    request = RequestFactory().get("/article/hello/")
    first = views["article"](request, slug="hello")
    second = views["article"](RequestFactory().get("/article/hello/"), slug="hello")
    assert first.content == second.content == b"article hello"
    assert second["Cache-Status"].startswith("cachekit; hit")
