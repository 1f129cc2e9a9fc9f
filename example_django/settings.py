"""Settings for the example site. Development only: DEBUG on, a fixed non-secret SECRET_KEY."""

from __future__ import annotations

import os
from pathlib import Path

import cachekit_web.django  # noqa: F401  (registers cachekit+redis:// with django-environ)

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-django-dev-only-not-a-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "cachekit_web.django",
    "example_django",
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "example_django.middleware.CacheStateMiddleware",  # "cache: hit" etc. on each page
]
ROOT_URLCONF = "example_django.urls"
TEMPLATES = [{
    "BACKEND": "django.template.backends.django.DjangoTemplates",
    "DIRS": [],
    "APP_DIRS": True,
    "OPTIONS": {"context_processors": [
        "django.template.context_processors.request",
        "django.contrib.auth.context_processors.auth",
        "django.contrib.messages.context_processors.messages",
    ]},
}]
# Inside the checkout (example_django/.data/, git-ignored): each clone has its own database,
# so a fresh clone creates the admin user and prints its password.
DATABASES = {"default": {
    "ENGINE": "django.db.backends.sqlite3",
    "NAME": os.environ.get("EXAMPLE_DJANGO_DB", str(BASE_DIR / ".data" / "db.sqlite3")),
}}
# LOCATION is left out: the backend reads CACHEKIT_REDIS_URL (python -m example_django sets it
# to an embedded redis-server unless you set it yourself). Other CACHEKIT_* variables apply too.
CACHES = {"default": {
    "BACKEND": "cachekit_web.django.CachekitCache",
    "TIMEOUT": 300,
    "OPTIONS": {
        "NAMESPACE": "example-django",
        "SOCKET_TIMEOUT": 0.25,
        "SOCKET_CONNECT_TIMEOUT": 0.25,
        "CIRCUIT_BREAKER_RECOVERY_TIMEOUT": 5,
    },
}}
USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Every line starts with its time (runserver's request lines carry theirs too).
    "formatters": {"stamped": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "stamped"}},
    "loggers": {"cachekit_web": {"handlers": ["console"], "level": "INFO"}},
}
# Seconds the deliberately slow page and the slow function take.
EXAMPLE_SLOW_SECONDS = float(os.environ.get("EXAMPLE_SLOW_SECONDS", "0.5"))
# How to stop and restart the demo's Redis, shown on the home page (`python -m example_django`
# sets them).
EXAMPLE_REDIS_STOP = os.environ.get("EXAMPLE_REDIS_STOP", "")
EXAMPLE_REDIS_START = os.environ.get("EXAMPLE_REDIS_START", "")
