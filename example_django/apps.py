"""The example site's app."""

from django.apps import AppConfig


class ExampleConfig(AppConfig):
    """Articles, a slow cached page, a cached fragment and a cached function."""

    name = "example_django"
    default_auto_field = "django.db.models.BigAutoField"
