"""cache_page never serves one visitor's page to another."""

from __future__ import annotations

from typing import Any

from django.test import Client


def test_flash_messages_are_not_shared(cache: Any) -> None:
    alice = Client()
    alice.cookies["who"] = "alice"
    first = alice.get("/t/greeting/")
    assert first.content == b"home Welcome back, alice"
    assert "stored" not in first["Cache-Status"]
    anonymous = Client().get("/t/greeting/")
    assert anonymous.content == b"home"
    assert "hit" not in anonymous["Cache-Status"]


def test_authorized_requests_are_neither_served_nor_stored(cache: Any) -> None:
    client = Client()
    first = client.get("/t/api/", HTTP_AUTHORIZATION="Bearer alice-token")
    assert first.content == b"data for Bearer alice-token"
    assert first["Cache-Status"].startswith("cachekit; fwd=request")
    assert client.get("/t/api/").content == b"data for nobody"
    again = client.get("/t/api/")
    assert again.content == b"data for nobody" and "hit" in again["Cache-Status"]
    other = client.get("/t/api/", HTTP_AUTHORIZATION="Bearer bob-token")
    assert other.content == b"data for Bearer bob-token"
