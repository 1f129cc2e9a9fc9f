"""Redis Cluster backend, sync and asyncio.

The classes are written once in ``core/_async/cluster.py`` (the sync ones are
generated from it); what they share without I/O is in ``topology``.
"""

from __future__ import annotations

from .._async.cluster import AsyncClusterBackend
from .._sync.cluster import ClusterBackend
from ..urls import HostsURL, parse_hosts_url
from .options import node_options
from .topology import DeferredDeletes, NodeGuard

__all__ = [
    "AsyncClusterBackend", "ClusterBackend", "DeferredDeletes", "HostsURL", "NodeGuard",
    "node_options", "parse_hosts_url",
]
