# GENERATED from cachekit_web/core/_async/__init__.py by scripts/generate_sync.py.
# Do not edit: change the async source, then run `make generate`.
"""The async sources of every I/O behaviour; ``core/_sync`` is generated from them."""
