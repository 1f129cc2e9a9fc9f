"""Routing keys on redis-py's cluster slot map: which primary owns which key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from ..errors import NodeUnreachableError
from .common import translate
from .errors import REDIS_ERRORS


def slot_owner(rc: Any, key: str | bytes) -> Any:
    """The primary that owns ``key``'s slot in ``rc``'s slot map.

    A slot no node owns is that slot's problem (E013, the breaker stays closed);
    any other routing failure is the cluster's (E010, trips the breaker).
    """
    try:
        return rc.nodes_manager.get_node_from_slot(rc.keyslot(key))
    except (KeyError, IndexError):  # the asyncio slot map lacks the slot altogether
        raise translate(redis.exceptions.SlotNotCoveredError()) from None
    except REDIS_ERRORS as exc:
        raise translate(exc) from None


def group_by_node(rc: Any, keys: Sequence[str]) -> tuple[
        dict[str, tuple[Any, dict[int, list[int]]]], list[int]]:
    """Key positions grouped by primary, then by slot; and the positions no node owns."""
    groups: dict[str, tuple[Any, dict[int, list[int]]]] = {}
    unowned: list[int] = []
    for i, key in enumerate(keys):
        try:
            node = slot_owner(rc, key)
        except NodeUnreachableError:
            unowned.append(i)  # treated like an unreachable node: nothing to send
            continue
        groups.setdefault(node.name, (node, {}))[1].setdefault(rc.keyslot(key), []).append(i)
    return groups, unowned


def map_version(rc: Any) -> int:
    """Changes whenever redis-py reloads the slot map (it builds a new table each time)."""
    return id(rc.nodes_manager.slots_cache)
