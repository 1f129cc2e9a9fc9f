from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="Article",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("title", models.CharField(max_length=200)),
                ("body", models.TextField()),
                ("views", models.PositiveIntegerField(default=0)),
                ("published", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["-published", "-id"]},
        ),
    ]
