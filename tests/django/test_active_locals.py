"""cachekit_web.django.active reads the active language and time zone as Django's functions
answer them: in threads, asyncio tasks, across sync_to_async/async_to_sync, and under
translation.override and timezone.override."""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.local import Local
from asgiref.sync import async_to_sync, sync_to_async
from django.utils import timezone, translation
from django.utils.translation import trans_real

from cachekit_web.django import active


@pytest.fixture(autouse=True)
def _nothing_active() -> Iterator[None]:
    translation.deactivate()
    timezone.deactivate()
    yield
    translation.deactivate()
    timezone.deactivate()
    active.recheck()


def _django() -> tuple[str | None, str]:
    return trans_real.get_language(), timezone.get_current_timezone_name()


def _ours() -> tuple[str | None, str]:
    return active.language(), active.timezone_name()


def test_the_direct_read_is_in_use() -> None:
    """The asgiref and Django of this environment have a shape the direct read knows (else
    page hits pay asgiref's Local twice again: see cachekit_web/django/active.py)."""
    assert active._storage_reader(Local()) is not None
    assert active.direct()


def test_answers_as_django_in_each_state() -> None:
    default = _django()
    assert _ours() == default
    with translation.override("fr"):
        assert _ours() == _django() == ("fr", default[1])
        with timezone.override("Europe/Paris"):
            assert _ours() == _django() == ("fr", "Europe/Paris")
            with translation.override(None):  # deactivate_all: no language
                assert _ours() == _django() == (None, "Europe/Paris")
            with timezone.override(None):
                assert _ours() == _django() == ("fr", default[1])
            assert _ours() == _django() == ("fr", "Europe/Paris")
        with translation.override("de", deactivate=True):
            assert _ours() == _django() == ("de", default[1])
        assert _ours() == _django() == default  # deactivated, not restored
    assert _ours() == _django() == default
    translation.activate("de")
    timezone.activate(datetime.timezone(datetime.timedelta(hours=-3)))
    assert _ours() == _django() == ("de", "UTC-03:00")
    timezone.activate(datetime.timezone(datetime.timedelta(hours=2), "Mine"))
    assert _ours() == _django() == ("de", "Mine")
    translation.deactivate_all()
    assert _ours() == _django() == (None, "Mine")
    translation.deactivate()
    timezone.deactivate()
    assert _ours() == _django() == default


def test_each_thread_reads_its_own() -> None:
    """A thread sees only what it activated itself, however the threads interleave."""
    barrier = threading.Barrier(3)
    seen: dict[str, list[Any]] = {}

    def worker(lang: str | None, tz: str | None) -> None:
        answers = seen.setdefault(str(lang), [])
        barrier.wait()
        answers.append((_ours(), _django()))
        with translation.override(lang), timezone.override(tz):
            barrier.wait()
            for _ in range(50):
                answers.append((_ours(), _django()))
        answers.append((_ours(), _django()))

    with translation.override("it"), timezone.override("Asia/Tokyo"):
        threads = [threading.Thread(target=worker, args=args)
                   for args in (("fr", "Europe/Paris"), ("de", "Europe/Berlin"))]
        for t in threads:
            t.start()
        barrier.wait()
        barrier.wait()
        for t in threads:
            t.join()
        assert _ours() == ("it", "Asia/Tokyo")
    default = _django()
    assert _ours() == default  # nothing the threads activated shows here
    for lang, tz in (("fr", "Europe/Paris"), ("de", "Europe/Berlin")):
        answers = seen[lang]
        assert all(ours == theirs for ours, theirs in answers)  # first: as Django
        assert answers[0] == (default, default) and answers[-1] == (default, default)
        assert all(pair == ((lang, tz), (lang, tz)) for pair in answers[1:-1])


def test_each_asyncio_task_reads_its_own() -> None:
    async def task(lang: str, tz: str) -> list[Any]:
        answers = []
        with translation.override(lang), timezone.override(tz):
            for _ in range(20):
                await asyncio.sleep(0)  # the other tasks run and activate theirs
                answers.append((_ours(), _django()))
        answers.append((_ours(), _django()))
        return answers

    async def main() -> list[list[Any]]:
        return list(await asyncio.gather(task("fr", "Europe/Paris"),
                                         task("de", "Europe/Berlin"),
                                         task("es", "America/Bogota")))

    default = _django()
    for (lang, tz), answers in zip((("fr", "Europe/Paris"), ("de", "Europe/Berlin"),
                                    ("es", "America/Bogota")), asyncio.run(main()),
                                   strict=True):
        assert all(ours == theirs for ours, theirs in answers)  # first: as Django
        assert all(pair == ((lang, tz), (lang, tz)) for pair in answers[:-1])
        assert answers[-1] == (default, default)


def test_sync_to_async_and_async_to_sync_carry_them() -> None:
    """asgiref moves a context between threads (and re-tags its Local data for the thread)."""
    def in_sync() -> Any:
        return _ours(), _django()

    async def in_async() -> Any:
        with translation.override("fr"), timezone.override("Europe/Paris"):
            sensitive = await sync_to_async(in_sync)()
            pooled = await sync_to_async(in_sync, thread_sensitive=False)()
        return sensitive, pooled

    expected = (("fr", "Europe/Paris"), ("fr", "Europe/Paris"))
    assert asyncio.run(in_async()) == (expected, expected)

    async def back() -> Any:
        return _ours(), _django()

    with translation.override("de"), timezone.override("Europe/Berlin"):
        assert async_to_sync(back)() == (("de", "Europe/Berlin"), ("de", "Europe/Berlin"))


def test_a_check_that_disagrees_keeps_djangos_functions(monkeypatch: pytest.MonkeyPatch) -> None:
    real = active._storage_reader

    def wrong(local: Any) -> Any:
        read = real(local)
        return None if read is None else (lambda: active._MISSING)  # never sees a value

    monkeypatch.setattr(active, "_storage_reader", wrong)
    active.recheck()
    assert not active.direct()
    with translation.override("fr"), timezone.override("Europe/Paris"):
        assert _ours() == ("fr", "Europe/Paris")


def test_other_shapes_are_not_read_directly() -> None:
    assert active._storage_reader(threading.local()) is None
    assert active._storage_reader(Local(thread_critical=True)) is None
    assert active._storage_reader(object()) is None


def test_a_replaced_local_is_read_through_django(monkeypatch: pytest.MonkeyPatch) -> None:
    if not active.direct():
        pytest.skip("this asgiref's Locals are read through Django anyway")
    monkeypatch.setattr(trans_real, "_active", Local())
    monkeypatch.setattr(timezone, "_active", Local())
    with translation.override("fr"), timezone.override("Europe/Paris"):
        assert _ours() == _django() == ("fr", "Europe/Paris")
