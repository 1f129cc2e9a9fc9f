"""The Django app: system checks, the {% cache %} tag library, the admin health page."""

from __future__ import annotations

from django.apps import AppConfig


class CachekitConfig(AppConfig):  # type: ignore[misc]
    """``INSTALLED_APPS += ["cachekit_web.django"]``."""

    name = "cachekit_web.django"
    label = "cachekit_web"
    verbose_name = "cachekit-web"
    default = True

    def ready(self) -> None:
        """Register checks and link the health page into the admin (if installed)."""
        from django.apps import apps

        from . import checks  # noqa: F401  (registers the checks)

        if apps.is_installed("django.contrib.admin"):  # API-only projects have no admin
            from .admin import install_admin_views

            install_admin_views()
