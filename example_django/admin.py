"""Articles in the admin (the cache health page is added by cachekit_web.django)."""

from django.contrib import admin

from .models import Article

admin.site.register(Article)
