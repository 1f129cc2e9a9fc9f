"""The health URLs outside the admin: ``path("cache/", include("cachekit_web.django.urls"))``."""

from __future__ import annotations

from django.urls import path

from .admin import error_view, health_json_view, health_view

app_name = "cachekit"

urlpatterns = [
    path("health/", health_view, name="cachekit_health"),
    path("health.json", health_json_view, name="cachekit_health_json"),
    path("errors/<str:code>/", error_view, name="cachekit_error"),
]
