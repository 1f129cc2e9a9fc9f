"""The active language and time zone, as Django's public functions answer them, read faster.

``trans_real.get_language()`` and ``timezone.get_current_timezone_name()`` each read an
asgiref ``Local``, whose public read takes a lock and, when nothing is active, raises and
catches an AttributeError (1-2 us each with asgiref 3.13, 2-5 with 3.12); a page hit asks
both. Where asgiref keeps a Local's data in a context variable (asgiref 3.8, and 3.10 on),
``language`` and ``timezone_name`` read that variable directly, as asgiref itself does,
without the lock. They do so only after a check at first use finds the shape they expect
and their answers equal Django's in every state the check sets up; otherwise they are
Django's functions.
"""

from __future__ import annotations

import contextvars
import datetime
import threading
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils import timezone
from django.utils.translation import trans_real

_MISSING: Any = object()


def _storage_reader(local: Any) -> Callable[[], Any] | None:
    """A function answering ``getattr(local, "value", _MISSING)`` for the asgiref shapes known
    here, or None for any other shape (asgiref before 3.8 or 3.9: per-thread or per-key
    storage)."""
    try:
        from asgiref import local as asgiref_local
    except ImportError:
        return None
    try:
        storage = vars(local).get("_storage")
        var = vars(storage).get("_data") if storage is not None else None
    except TypeError:  # no __dict__
        return None
    if type(storage) is not getattr(asgiref_local, "_CVar", None) or \
            type(var) is not contextvars.ContextVar:
        return None  # thread-critical storage is a threading.local
    tagged = getattr(asgiref_local, "_Storage", None)  # 3.12 on: data tagged with its thread
    get_ident = threading.get_ident

    def read() -> Any:
        held = var.get(None)
        if held is None:
            return _MISSING
        if tagged is None and type(held) is dict:
            return held.get("value", _MISSING)
        if tagged is not None and type(held) is tagged:
            # Data another thread inherited (Python 3.14's thread_inherit_context) is not its.
            return held.data.get("value", _MISSING) if held.thread_id == get_ident() \
                else _MISSING
        return getattr(local, "value", _MISSING)  # a shape this copy does not know

    return read


def _direct_language(local: Any, read: Callable[[], Any]) -> Callable[[], str | None]:
    def language() -> str | None:
        if trans_real._active is not local:  # replaced: the public read
            return trans_real.get_language()  # type: ignore[no-any-return]
        t = read()  # the body of trans_real.get_language
        if t is not None and t is not _MISSING:
            try:
                return t.to_language()  # type: ignore[no-any-return]
            except AttributeError:
                pass
        return settings.LANGUAGE_CODE  # type: ignore[no-any-return]

    return language


def _direct_timezone_name(local: Any, read: Callable[[], Any],
                          name_of: Callable[[Any], str]) -> Callable[[], str]:
    get_default = timezone.get_default_timezone

    def timezone_name() -> str:
        if timezone._active is not local:
            return timezone.get_current_timezone_name()  # type: ignore[no-any-return]
        found = read()  # as get_current_timezone: getattr(_active, "value", default)
        return name_of(get_default() if found is _MISSING else found)

    return timezone_name


class _Probe:
    """A translation the check activates: no catalogue to load."""

    @staticmethod
    def to_language() -> str:
        """A language code no site uses."""
        return "x-cachekit-check"


def _agree(language: Callable[[], str | None], timezone_name: Callable[[], str],
           read_language: Callable[[], Any], read_timezone: Callable[[], Any]) -> bool:
    """Whether the direct reads answer as Django's functions (and find what its Locals hold)
    in the states a request can be in: nothing active, activated, deactivated,
    deactivate_all, and in a new thread."""
    lang_local, tz_local = trans_real._active, timezone._active

    def same() -> bool:
        return bool(language() == trans_real.get_language()
                    and timezone_name() == timezone.get_current_timezone_name()
                    and read_language() is getattr(lang_local, "value", _MISSING)
                    and read_timezone() is getattr(tz_local, "value", _MISSING))

    def in_thread() -> bool:
        answers: list[bool] = []
        worker = threading.Thread(target=lambda: answers.append(same()))
        worker.start()
        worker.join()
        return answers == [True]

    def states() -> bool:
        results = [same()]
        lang_local.value = _Probe()  # what trans_real.activate sets, without a catalogue
        results.append(same())
        timezone.activate(datetime.timezone(datetime.timedelta(hours=5, minutes=45), "X-CK"))
        results += [same(), in_thread()]
        trans_real.deactivate_all()
        results.append(same())
        timezone.activate(datetime.timezone.utc)
        results.append(same())
        trans_real.deactivate()
        results.append(same())
        timezone.deactivate()
        results += [same(), in_thread()]
        return all(results)

    try:  # in an empty context: nothing the check activates is seen outside it
        return contextvars.Context().run(states)
    except Exception:  # any surprise: Django's own functions
        return False


def _choose() -> tuple[Callable[[], str | None], Callable[[], str]]:
    """The direct reads if this asgiref and Django have the shape they expect and agree with
    Django's functions, else Django's functions."""
    public = (trans_real.get_language, timezone.get_current_timezone_name)
    lang_local, tz_local = trans_real._active, timezone._active
    name_of = getattr(timezone, "_get_timezone_name", None)
    read_language, read_timezone = _storage_reader(lang_local), _storage_reader(tz_local)
    if read_language is None or read_timezone is None or not callable(name_of):
        return public
    direct = (_direct_language(lang_local, read_language),
              _direct_timezone_name(tz_local, read_timezone, name_of))
    return direct if _agree(*direct, read_language, read_timezone) else public


def _first_language() -> str | None:
    _use(*_choose())
    return language()


def _first_timezone_name() -> str:
    _use(*_choose())
    return timezone_name()


def _use(lang: Callable[[], str | None], tz: Callable[[], str]) -> None:
    global language, timezone_name
    language, timezone_name = lang, tz


# trans_real.get_language() and timezone.get_current_timezone_name(), chosen at first use.
language: Callable[[], str | None] = _first_language
timezone_name: Callable[[], str] = _first_timezone_name


def direct() -> bool:
    """Whether the Locals are read directly: the check at first use passed (it runs now if
    it has not yet)."""
    if language is _first_language:
        _use(*_choose())
    return language is not trans_real.get_language


def recheck() -> None:
    """Check again at next use (tests: after swapping asgiref or Django's Locals)."""
    _use(_first_language, _first_timezone_name)
