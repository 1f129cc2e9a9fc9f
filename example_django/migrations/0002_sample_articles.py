from django.db import migrations

SAMPLES = [
    ("Caching that fails open", "When Redis is down, pages are rendered instead of failing.", 42),
    ("Sealed values", "Every cached value is signed or encrypted and bound to its key.", 17),
    ("One render per key", "Concurrent misses wait for one render instead of stampeding.", 8),
]


def add_samples(apps, schema_editor):  # type: ignore[no-untyped-def]
    Article = apps.get_model("example_django", "Article")
    for title, body, views in SAMPLES:
        Article.objects.get_or_create(title=title, defaults={"body": body, "views": views})


class Migration(migrations.Migration):
    dependencies = [("example_django", "0001_initial")]
    operations = [migrations.RunPython(add_samples, migrations.RunPython.noop)]
