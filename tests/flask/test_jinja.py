"""The {% cache timeout, "name", vary... %} tag."""

from __future__ import annotations

from flask import Flask, render_template_string

from cachekit_web.flask import Cache, make_template_fragment_key

TEMPLATE = '{% cache 60, "box", user %}[{{ user }} {{ n }}]{% endcache %}'


def test_fragment_is_cached_per_vary_value(app_cache: tuple[Flask, Cache]) -> None:
    app, cache = app_cache
    with app.test_request_context():
        assert render_template_string(TEMPLATE, user="ann", n=1) == "[ann 1]"
        assert render_template_string(TEMPLATE, user="ann", n=2) == "[ann 1]"
        assert render_template_string(TEMPLATE, user="bob", n=3) == "[bob 3]"
        key = make_template_fragment_key("box", vary_on=["ann"])
        # Flask-Caching's prefix, then a digest of the vary values (never joined with "_").
        assert key.startswith("_template_fragment_cache_box:")
        assert cache.get(key) == "[ann 1]"
        cache.delete(key)
        assert render_template_string(TEMPLATE, user="ann", n=4) == "[ann 4]"


def test_fragment_del_timeout_and_anonymous_fragment(app_cache: tuple[Flask, Cache]) -> None:
    app, _ = app_cache
    with app.test_request_context():
        assert render_template_string('{% cache 60, "x" %}{{ n }}{% endcache %}', n=1) == "1"
        assert render_template_string('{% cache "del", "x" %}{{ n }}{% endcache %}', n=2) == "2"
        assert render_template_string('{% cache 60, "x" %}{{ n }}{% endcache %}', n=3) == "3"
        assert render_template_string("{% cache 60 %}{{ n }}{% endcache %}", n=5) == "5"


def test_fragment_escaping_is_preserved(app_cache: tuple[Flask, Cache]) -> None:
    app, _ = app_cache
    with app.test_request_context():
        tpl = '{% cache 60, "esc" %}{{ v }}{% endcache %}|{{ v }}'
        assert render_template_string(tpl, v="<b>") == "&lt;b&gt;|&lt;b&gt;"
        assert render_template_string(tpl, v="<i>") == "&lt;b&gt;|&lt;i&gt;"
