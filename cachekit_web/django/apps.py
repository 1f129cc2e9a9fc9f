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
        from . import checks  # noqa: F401  (registers the checks)
        from .admin import install_admin_views

        install_admin_views()
