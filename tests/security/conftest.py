"""Hostile-data tests: frames planted or replayed in a real Redis, forks, deep and huge values.

The fixtures are the core, Django and Flask suites' own (a real redis-server started by
the session).
"""

from __future__ import annotations

import struct

from cachekit_web.core.data.crypto import KeyRing
from tests.core.conftest import KEY_A, SIGNING, MakeClient, make_client, raw
from tests.django.conftest import (
    cache,
    django_environment,
    shared_clients_closed,
    use_caches,
)
from tests.flask.conftest import make_app

__all__ = [
    "KEY_A", "MODES", "SIGNING", "MakeClient", "cache", "django_environment", "make_app",
    "make_client", "raw", "shared_clients_closed", "use_caches", "v1_frame",
]

MODES: dict[str, dict[str, str]] = {
    "plain": {},
    "signed": {"SIGNING_KEY": SIGNING},
    "encrypted": {"MASTER_KEY": KEY_A},
}


def v1_frame(ring: KeyRing, fk: str, payload: bytes, flags: int = 0) -> bytes:
    """A frame in the first stored format (no expiry), sealed as ``ring`` would seal it.

    Built by hand so the same planted bytes are read by old and new code alike.
    """
    if ring.encrypted:
        flags |= 0x01
    elif ring.authenticated:
        flags |= 0x02
    header = struct.pack(">2sBB4s", b"CK", 1, flags, ring.key_id)
    if ring.encrypted:
        return header + ring.seal(header, fk.encode(), payload)
    if ring.authenticated:
        return header + ring.sign(header, fk.encode(), payload)
    return header + payload
