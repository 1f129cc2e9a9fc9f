"""One model: enough to show caching of querysets and model instances."""

from django.db import models


class Article(models.Model):
    """A short article."""

    title = models.CharField(max_length=200)
    body = models.TextField()
    views = models.PositiveIntegerField(default=0)
    published = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-published", "-id"]

    def __str__(self) -> str:
        return self.title
