"""Settings for running Django's own cache test suite (BaseCacheTests) against CachekitCache."""

SECRET_KEY = "cachekit-django-suite-not-secret"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "cache"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
USE_TZ = False
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "tests.django.cache_suite.settings"
urlpatterns: list[object] = []
