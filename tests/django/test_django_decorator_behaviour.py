"""The behaviours Django's own CacheMiddlewareTest, CacheI18nTest, CacheHEADTest and
{% cache %} tag tests check, written for cachekit_web's cache_page and tag (our own tests,
against the real redis-server)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.core.checks import run_checks
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.template import Context, Engine, TemplateSyntaxError
from django.test import RequestFactory
from django.utils import translation
from django.utils.cache import has_vary_header, patch_vary_headers
from django.views.decorators.cache import cache_control

from cachekit_web.django import cache_page

from .conftest import cache_conf

factory = RequestFactory()


def _hello(request: HttpRequest, value: str) -> HttpResponse:
    return HttpResponse(f"Hello World {value}")


@pytest.fixture()
def two_caches(use_caches: Callable[..., Any], redis_url: str, namespace: str) -> Any:
    # CACHE_MIDDLEWARE_* belong to the middleware; the decorator ignores them, as Django's.
    caches = {"default": cache_conf(redis_url, namespace),
              "other": cache_conf(redis_url, namespace + "-other")}
    cache = use_caches(caches, CACHE_MIDDLEWARE_ALIAS="other",
                       CACHE_MIDDLEWARE_KEY_PREFIX="middlewareprefix")
    cache.clear()
    from django.core.cache import caches as all_caches

    all_caches["other"].clear()
    return cache


def test_decorator_defaults_are_default_alias_and_empty_prefix(two_caches: Any) -> None:
    request = factory.get("/view/")
    implicit = cache_page(3)(_hello)
    explicit = cache_page(3, cache="default")(_hello)
    explicit_empty_prefix = cache_page(3, cache="default", key_prefix="")(_hello)
    prefixed = cache_page(3, key_prefix="prefix1")(_hello)
    explicit_prefixed = cache_page(3, cache="default", key_prefix="prefix1")(_hello)
    other = cache_page(3, cache="other")(_hello)
    assert implicit(request, "1").content == b"Hello World 1"
    assert implicit(request, "2").content == b"Hello World 1"
    assert explicit(request, "3").content == b"Hello World 1"
    assert explicit_empty_prefix(request, "4").content == b"Hello World 1"
    assert explicit_prefixed(request, "5").content == b"Hello World 5"
    assert prefixed(request, "6").content == b"Hello World 5"
    assert other(request, "7").content == b"Hello World 7"
    assert other(request, "8").content == b"Hello World 7"


def test_a_rapidly_expiring_page_is_rendered_again(cache: Any) -> None:
    view = cache_page(0.3)(_hello)
    request = factory.get("/view/")
    assert view(request, "1").content == b"Hello World 1"
    assert view(request, "2").content == b"Hello World 1"
    deadline = time.monotonic() + 3
    while cache.keys("*") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert view(request, "3").content == b"Hello World 3"


@pytest.mark.parametrize("cc", ["private", "no-cache", "no-store", "PRIVATE", "NO-store"])
def test_cache_control_private_or_no_store_is_not_cached(cache: Any, cc: str) -> None:
    @cache_page(3)
    def view(request: HttpRequest, value: str) -> HttpResponse:
        return HttpResponse(f"Hello World {value}", headers={"Cache-Control": cc})

    assert view(factory.get("/view/"), "1").content == b"Hello World 1"
    assert view(factory.get("/view/"), "2").content == b"Hello World 2"


@pytest.mark.parametrize("vary", [("*",), (" *",), ("Accept-Language", "*")])
def test_vary_asterisk_is_not_cached(cache: Any, vary: tuple[str, ...]) -> None:
    @cache_page(3)
    def view(request: HttpRequest, value: str) -> HttpResponse:
        response = HttpResponse(f"Hello World {value}")
        response["Vary"] = ", ".join(vary)
        return response

    assert view(factory.get("/view/"), "1").content == b"Hello World 1"
    assert view(factory.get("/view/"), "2").content == b"Hello World 2"


def test_authorization_request_varies_on_authorization(cache: Any) -> None:
    view = cache_page(3)(_hello)
    response = view(factory.get("/view/", headers={"Authorization": "token"}), "1")
    assert has_vary_header(response, "Authorization")
    assert view(factory.get("/view/", headers={"Authorization": "token"}), "2").content \
        == b"Hello World 2"  # never served from (nor stored in) the shared cache


def test_empty_authorization_or_public_response_does_not_vary(cache: Any) -> None:
    view = cache_page(3)(_hello)
    response = view(factory.get("/view/", headers={"Authorization": ""}), "1")
    assert not has_vary_header(response, "Authorization")
    public = cache_page(3)(cache_control(public=True)(_hello))
    response = public(factory.get("/view/", headers={"Authorization": "token"}), "1")
    assert not has_vary_header(response, "Authorization")


def test_async_authorization_request_varies_on_authorization(cache: Any) -> None:
    import asyncio

    @cache_page(3)
    async def view(request: HttpRequest) -> HttpResponse:
        return HttpResponse("async")

    response = asyncio.run(view(factory.get("/view/", headers={"Authorization": "t"})))
    assert has_vary_header(response, "Authorization")


def test_not_modified_is_not_cached(cache: Any) -> None:
    calls: list[int] = []

    @cache_page(2)
    def view(request: HttpRequest) -> HttpResponse:
        calls.append(1)
        return HttpResponseNotModified()

    view(factory.get("/view/"))
    response = view(factory.get("/view/"))
    assert len(calls) == 2 and isinstance(response, HttpResponseNotModified)


def test_a_cookie_refreshing_response_is_not_cached(cache: Any) -> None:
    @cache_page(3)
    def view(request: HttpRequest) -> HttpResponse:
        response = HttpResponse(f"content {len(calls)}")
        calls.append(1)
        response.set_cookie("session", "new_value")
        patch_vary_headers(response, ("Cookie",))
        return response

    calls: list[int] = []
    request = factory.get("/view/", HTTP_COOKIE="session=old_value")
    view(request)
    view(factory.get("/view/", HTTP_COOKIE="session=old_value"))
    assert len(calls) == 2


def test_head_is_answered_from_the_get_entry(cache: Any) -> None:
    view = cache_page(3)(_hello)
    assert view(factory.get("/cache/test/"), "1").content == b"Hello World 1"
    head = view(factory.head("/cache/test/"), "2")
    assert head.content == b"Hello World 1"


def test_each_language_has_its_own_entry(use_caches: Callable[..., Any], redis_url: str,
                                         namespace: str) -> None:
    use_caches({"default": cache_conf(redis_url, namespace)}, USE_I18N=True,
               LANGUAGES=[("en", "English"), ("es", "Spanish")])

    def view(request: HttpRequest, value: str) -> HttpResponse:
        return HttpResponse(f"{translation.get_language()} {value}")

    cached = cache_page(3)(view)
    with translation.override("en"):
        assert cached(factory.get("/i18n/"), "1").content == b"en 1"
    with translation.override("es"):
        assert cached(factory.get("/i18n/"), "2").content == b"es 2"
        assert cached(factory.get("/i18n/"), "3").content == b"es 2"
    with translation.override("en"):
        assert cached(factory.get("/i18n/"), "4").content == b"en 1"


@pytest.fixture()
def fresh_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the aliases this test's decorators name (the registry is process-wide)."""
    from cachekit_web.django import views

    monkeypatch.setattr(views, "DECORATED_ALIASES", set())


def test_alias_that_is_not_cachekit_is_a_startup_check_and_views_work_uncached(
        use_caches: Callable[..., Any], redis_url: str, namespace: str,
        fresh_aliases: None) -> None:
    use_caches({"default": cache_conf(redis_url, namespace),
                "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
    view = cache_page(3, cache="local")(_hello)
    ids = {m.id for m in run_checks()}
    assert "cachekit.E043" in ids
    first = view(factory.get("/view/"), "1")
    assert first.status_code == 200 and first.content == b"Hello World 1"
    assert view(factory.get("/view/"), "2").content == b"Hello World 2"  # uncached
    missing = cache_page(3, cache="nope")(_hello)
    assert "cachekit.E043" in {m.id for m in run_checks()}
    assert missing(factory.get("/view/"), "3").content == b"Hello World 3"


def test_a_cachekit_alias_passes_the_check(cache: Any, fresh_aliases: None) -> None:
    cache_page(3)(_hello)
    assert "cachekit.E043" not in {m.id for m in run_checks()}


# -- {% cache %} ---------------------------------------------------------------------
ENGINE = Engine(libraries={"cachekit": "cachekit_web.django.templatetags.cachekit"})


def test_tag_naming_a_missing_cache_raises_template_syntax_error(cache: Any) -> None:
    template = ENGINE.from_string(
        '{% load cachekit %}{% cache 1 backend using="unknown" %}bar{% endcache %}')
    with pytest.raises(TemplateSyntaxError):
        template.render(Context({}))


@pytest.mark.parametrize(("source", "context"), [
    ("{% cache %}{% endcache %}", None),
    ("{% cache 1 %}{% endcache %}", None),
    ("{% cache foo bar %}{% endcache %}", {}),
    ("{% cache foo bar %}{% endcache %}", {"foo": "fail"}),
    ("{% cache foo bar %}{% endcache %}", {"foo": []}),
])
def test_tag_syntax_and_timeout_errors(cache: Any, source: str,
                                       context: dict[str, Any] | None) -> None:
    with pytest.raises(TemplateSyntaxError):
        ENGINE.from_string("{% load cachekit %}" + source).render(Context(context or {}))


def test_tag_vary_on_variables_and_variable_timeout(cache: Any) -> None:
    def render(name: str, ctx: dict[str, Any]) -> str:
        source = "{% load cachekit %}{% cache time test foo %}" + name + "{% endcache %}"
        return ENGINE.from_string(source).render(Context(ctx))

    assert render("first", {"foo": 1, "time": 2}) == "first"
    assert render("second", {"foo": 1, "time": 2}) == "first"
    assert render("third", {"foo": 2, "time": 2}) == "third"
    assert render("fourth", {"foo": 1, "time": None}) == "first"


def test_a_response_setting_a_cookie_is_judged_as_sent(cache: Any) -> None:
    # The core's rule reads the headers as sent, Set-Cookie first (as Flask's responses);
    # Django keeps cookies out of response.items(), so the adapter had a rule of its own.
    @cache_page(3)
    def view(request: HttpRequest) -> HttpResponse:
        response = HttpResponse("mine")
        response.set_cookie("seen", "1")
        response["Cache-Control"] = "private"
        return response

    response = view(factory.get("/view/"))
    assert response["Cache-Status"] == "cachekit; fwd=miss; detail=set-cookie"
