"""Key rules: cluster hash tags, the keys of locks, and Redis glob patterns."""

from __future__ import annotations

import re


def hash_tag(key: str) -> str | None:
    """The part of ``key`` Redis Cluster hashes when it has a {tag}, else None."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:
        return None
    return key[start + 1:end]


def lock_key(full_key: str) -> str:
    """The recompute lock's key for ``full_key``: never a full key itself, same cluster slot.

    Full keys start with the namespace, which is never '{' or '!', so neither form
    below can be a user's key; both hash to the value's slot (a key with a stray '}'
    and no tag cannot be wrapped safely, and only loses that colocation).
    """
    if hash_tag(full_key) is not None or "}" in full_key:
        return "!lock:" + full_key  # keeps the key's own {tag}
    return "{" + full_key + "}!lock"


def user_lock_key(full_key: str) -> str:
    """The key of ``lock(name)``: never a user key nor a recompute lock, same slot as the key."""
    if hash_tag(full_key) is not None or "}" in full_key:
        return "!user-lock:" + full_key
    return "{" + full_key + "}!user-lock"


def redis_glob(pattern: str) -> str:
    """A regular expression matching what the Redis glob ``pattern`` matches (memory store)."""
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 2 if pattern[i + 1:i + 2] in ("^", "]") else i + 1)
            body = pattern[i + 1:end]
            neg = body.startswith("^")
            body = body[1:] if neg else body
            out.append("[" + ("^" if neg else "") + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return "".join(out) + r"\Z"


def escape_glob(text: str) -> str:
    """``text`` with the Redis glob's special characters escaped, so it matches itself."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)
