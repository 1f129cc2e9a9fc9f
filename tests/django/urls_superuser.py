"""Test URLs: an admin site that admits superusers only, with the health page mounted."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import path

from cachekit_web.django.admin import install_admin_views

from .urls import urlpatterns as base_urlpatterns


class SuperuserAdminSite(admin.AdminSite):  # type: ignore[misc]
    """Stands in for a locked-down (superuser-only or two-factor) admin."""

    def has_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_active and request.user.is_superuser)


superuser_site = SuperuserAdminSite(name="superadmin")
install_admin_views(superuser_site)

urlpatterns = [path("superadmin/", superuser_site.urls), *base_urlpatterns]
