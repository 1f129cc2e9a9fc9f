"""A client with neither MASTER_KEY nor SIGNING_KEY says so plainly: health report, page, doctor."""

from __future__ import annotations

import io
import secrets
from pathlib import Path
from typing import Any

import pytest

from cachekit_web.cli import doctor_checks, run_checks
from cachekit_web.core.client import CacheClient
from cachekit_web.core.observe.render import render_dashboard

MODES: list[tuple[dict[str, Any], str]] = [
    ({}, "unauthenticated"),
    ({"SIGNING_KEY": "a-signing-key-for-the-test"}, "signed"),
    ({"MASTER_KEY": secrets.token_hex(32)}, "encrypted"),
]


@pytest.mark.parametrize(("keys", "mode"), MODES, ids=[m for _, m in MODES])
def test_health_report_names_the_value_mode(redis_url: str, namespace: str,
                                            keys: dict[str, Any], mode: str) -> None:
    with CacheClient.from_url(redis_url, NAMESPACE=namespace, **keys) as client:
        report = client.health()
    assert report.encryption["mode"] == mode
    assert report.encryption["authenticated"] is (mode != "unauthenticated")
    page = render_dashboard(report)
    assert ("NOT authenticated" in page) is (mode == "unauthenticated")


@pytest.mark.parametrize(("keys", "mode"), MODES, ids=[m for _, m in MODES])
def test_doctor_says_what_the_round_trip_proved(redis_url: str, namespace: str,
                                                keys: dict[str, Any], mode: str) -> None:
    out = io.StringIO()
    assert run_checks(doctor_checks(redis_url, {"NAMESPACE": namespace, **keys}), out) == 0
    text = out.getvalue()
    if mode == "unauthenticated":
        assert "sealed" not in text
        assert "UNAUTHENTICATED" in text
    else:
        article = "an" if mode == "encrypted" else "a"
        assert f"round trip: set, get and delete of {article} {mode} value succeeded" in text


def test_readme_describes_the_unauthenticated_mode() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert "every stored value is\n  sealed" not in readme
    assert "Unauthenticated mode" in readme
