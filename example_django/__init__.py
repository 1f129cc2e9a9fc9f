"""A small Django site showing cachekit-web: `python -m example_django` (or `make demo`)."""
