"""URLs of the example site."""

from django.contrib import admin
from django.urls import path

from . import views

urlpatterns = [
    path("", views.index, name="index"),
    path("slow/", views.slow, name="slow"),
    path("admin/", admin.site.urls),
]
