"""One node's health entry (PING, then INFO): the only node report builder.

The async source; ``core/_sync/nodes.py`` is generated from it.
"""

from __future__ import annotations

import time
from typing import Any

from ..backends.common import translate
from ..backends.errors import REDIS_ERRORS
from ..backends.topology import answered, node_entry


async def async_node_report(name: str, role: str, conn: Any, *, down: bool = False,
                            with_info: bool = True) -> dict[str, Any]:
    """Role, reachability, latency and memory of the node behind ``conn``."""
    entry = node_entry(name, role, down)
    try:
        start = time.perf_counter()
        await conn.ping()
        took = time.perf_counter() - start
        raw = await conn.info() if with_info else {}
    except REDIS_ERRORS as exc:
        entry["error"] = translate(exc).code
        return entry
    answered(entry, took, raw)
    return entry
