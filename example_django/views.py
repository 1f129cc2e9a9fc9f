"""Three ways to cache: a whole page, a template fragment, and a function's result."""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from cachekit_web.django import cache_page

from .models import Article


def article_stats() -> dict[str, int]:
    """Totals over all articles; slow on purpose, so it is cached with get_or_set."""

    def compute() -> dict[str, int]:
        time.sleep(settings.EXAMPLE_SLOW_SECONDS)
        total = Article.objects.aggregate(total=Sum("views"))["total"] or 0
        return {"articles": Article.objects.count(), "views": int(total)}

    result: dict[str, int] = cache.get_or_set("article-stats", compute, timeout=60)
    return result


def index(request: HttpRequest) -> HttpResponse:
    """Home: the article list, a fragment-cached sidebar, and cached stats."""
    return render(request, "example_django/index.html", {
        "articles": Article.objects.all()[:20],
        "stats": article_stats(),
        "redis_stop": getattr(settings, "EXAMPLE_REDIS_STOP", ""),
        "redis_start": getattr(settings, "EXAMPLE_REDIS_START", ""),
        "slow_seconds": f"{settings.EXAMPLE_SLOW_SECONDS:g} s",
    })


@cache_page(30, stale_ttl=60)
def slow(request: HttpRequest) -> HttpResponse:
    """A page that takes EXAMPLE_SLOW_SECONDS to render; cached for 30 s, then served stale
    for up to 60 s more while one request renders the new version."""
    time.sleep(settings.EXAMPLE_SLOW_SECONDS)
    return render(request, "example_django/slow.html", {
        "rendered_at": timezone.now(),
        "articles": Article.objects.all()[:5],
    })
