"""The in-process tier on a Redis Cluster: one tracking link (a LocalTier) per primary.

A node's invalidations arrive only on a connection to that node, so each primary gets
its own LocalTier (its "link": CLIENT TRACKING ... BCAST PREFIX <namespace>: on that
node, its own lease). A key is served by the link of the primary that owns its slot,
and only while that link's lease is valid; a lost link flushes its own entries and
serves nothing until it is back, while the other nodes' keys stay served.

Which primary owns a slot comes from this tier's own slot map (CLUSTER SLOTS, reloaded
every lease and at once when a reader meets a node it has no link to). On a reload,
links are opened to new primaries, closed for nodes that are no longer primaries, and
every node that lost a slot is flushed (what its moved slots held).

A value is stored only when the reader says which node answered (the backend's GET is
sent to the slot owner without following a redirection) and that node is both the
owner in this map and the node of the link whose token the read took: a read from a
node no live link tracks is never kept (the reader wakes the map reload instead).
MIGRATE deletes the keys on the source node, which invalidates them there.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from binascii import crc_hqx
from collections.abc import Callable
from typing import Any, Protocol

from redis.cluster import ClusterNode
from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from ..data.codec import Entry

log = logging.getLogger("cachekit_web.local")
_SLOT_MASK = REDIS_CLUSTER_HASH_SLOTS - 1
_CLUSTER_NODE: Any = ClusterNode  # untyped in some redis-py versions


def _names_owners(reply: Any, owners: list[str | None],
                  name_of: Callable[[str, int], str]) -> bool:
    """Whether ``owners`` (slot -> node name) names the primary of each range of a CLUSTER
    SLOTS ``reply``, each named by ``name_of(host, port)`` as redis-py names it (an empty or
    null host, the answering node's own, matches any host on that port)."""
    try:
        for row in reply:
            host, port = row[2][0], int(row[2][1])
            host = host.decode() if isinstance(host, bytes) else host
            want = name_of(host, port) if host else None
            for slot in (int(row[0]), int(row[1])):
                have = owners[slot]
                if have is None or (have != want if want is not None
                                    else not have.endswith(f":{port}")):
                    return False
    except (TypeError, ValueError, IndexError, AttributeError):  # None, or not a reply
        return False
    return True


def _node_namer(rc: Any) -> Callable[[str, int], str]:
    """How ``rc`` names the node a CLUSTER SLOTS reply gives as (host, port): its address
    remapping, then redis-py's own naming (``localhost`` is named by its address)."""
    remap = getattr(rc.nodes_manager, "remap_host_port", None)

    def name_of(host: str, port: int) -> str:
        if remap is not None:
            host, port = remap(host, port)
        return str(_CLUSTER_NODE(host, port).name)

    return name_of


class Link(Protocol):
    """What a ClusterTier needs of a node's tracking link (tier.LocalTier)."""

    address: str | None
    sinks: weakref.WeakSet[Any]
    invalidations: int
    bad_messages: int
    flushes: int

    @property
    def live(self) -> bool: ...
    @property
    def size_bytes(self) -> int: ...
    def __len__(self) -> int: ...
    def lookup(self, fk: str) -> Entry | None: ...
    def begin(self, fk: str) -> Any: ...
    def finish(self, fk: str, token: Any, entry: Entry | None = None, size: int = 0,
               pttl_ms: int = -2, node: str | None = None) -> bool: ...
    def forget(self, fk: str) -> None: ...
    def flush(self) -> None: ...
    def drain(self) -> None: ...
    def close(self) -> None: ...


class ClusterTier:
    """One LocalTier per cluster primary; a key is served by its slot owner's link."""

    def __init__(self, open_map: Callable[[], Any], make_link: Callable[[Any], Link],
                 prefix: str, *, lease: float, start: bool = True) -> None:
        self._open_map = open_map  # () -> a sync RedisCluster (its slot map is reloaded)
        self._make_link = make_link  # (redis-py ClusterNode) -> a started LocalTier
        # Set by tier_for: takes this tier out of its table once no client uses it.
        self.retire: Callable[[Any], bool] | None = None
        self.prefix = prefix
        self.lease = lease
        self.disabled: str | None = None
        self.sinks: weakref.WeakSet[Any] = weakref.WeakSet()  # shared with every link
        self.users: weakref.WeakSet[Any] | None = None
        self._lock = threading.Lock()
        self._links: dict[str, Link] = {}
        # Slot -> the link of its primary (None: no primary known or no link yet).
        self._slots: list[Link | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._owners: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        self._rc: Any = None
        self._last_reply: Any = None  # the CLUSTER SLOTS reply the map was built from
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._off_since: str | None = None
        self.reloads = 0
        if start:
            self._ensure_thread()

    def __repr__(self) -> str:
        return f"<ClusterTier prefix={self.prefix!r} links={sorted(self._links)}>"

    # -- state ---------------------------------------------------------------
    @property
    def live(self) -> bool:
        """Whether every primary's link may serve now."""
        links = list(self._links.values())
        return bool(links) and all(link.live for link in links)

    @property
    def links(self) -> dict[str, Link]:
        """Node name ("host:port") -> its tracking link (a copy)."""
        return dict(self._links)

    def __len__(self) -> int:
        return sum(len(link) for link in list(self._links.values()))

    @property
    def size_bytes(self) -> int:
        """Decoded bytes held by every link."""
        return sum(link.size_bytes for link in list(self._links.values()))

    @property
    def invalidations(self) -> int:
        """Entries dropped by the server's invalidations, over every link."""
        return sum(link.invalidations for link in list(self._links.values()))

    @property
    def bad_messages(self) -> int:
        """Messages on the channels that were not a list of keys, over every link."""
        return sum(link.bad_messages for link in list(self._links.values()))

    @property
    def flushes(self) -> int:
        """Flushes of every link (connection lost, FLUSHDB, garbage, slots moved away)."""
        return sum(link.flushes for link in list(self._links.values()))

    def link_for(self, fk: str) -> Link | None:
        """The link of the primary that owns ``fk``'s slot in this tier's map."""
        return self._slots[key_slot(fk.encode("utf-8", "surrogateescape"))]

    # -- the read path -------------------------------------------------------
    def lookup(self, fk: str) -> Entry | None:
        """The entry for ``fk`` if its slot owner's link serves it now, else None."""
        if "{" in fk:  # a hash tag: redis-py's rule
            link = self._slots[key_slot(fk.encode("utf-8", "surrogateescape"))]
        else:  # key_slot without its call and tag search (the hot path)
            link = self._slots[crc_hqx(fk.encode("utf-8", "surrogateescape"), 0) & _SLOT_MASK]
        return None if link is None else link.lookup(fk)

    def begin(self, fk: str) -> Any:
        """A token taken before the GET: the owner's link and that link's own token."""
        if self._pid != os.getpid() or self._thread is None or not self._thread.is_alive():
            self._ensure_thread()
        link = self.link_for(fk)
        if link is None:
            self._wake.set()  # no link for this slot yet: reload the map now
            return None, None
        return link, link.begin(fk)

    def finish(self, fk: str, token: Any, entry: Entry | None = None,
               size: int = 0, pttl_ms: int = -2, node: str | None = None) -> bool:
        """Keep ``entry`` only under the link that tracks ``node``, the node that answered,
        if it still owns the key's slot; always ends the token. True if stored."""
        link, inner = token
        if node is not None and node not in self._links:
            self._wake.set()  # a primary this tier has no link to: ask for one
        if link is None:
            return False
        if node is None or node != link.address or self.link_for(fk) is not link:
            entry = None  # the slot moved, or the answer came from another node
        return bool(link.finish(fk, inner, entry, size, pttl_ms, node))

    def forget(self, fk: str) -> None:
        """Drop ``fk`` everywhere (this process wrote it)."""
        for link in list(self._links.values()):
            link.forget(fk)

    def flush(self) -> None:
        """Drop every entry of every link."""
        for link in list(self._links.values()):
            link.flush()

    def drain(self) -> None:
        """Apply what every link's socket holds."""
        for link in list(self._links.values()):
            link.drain()

    # -- the slot map ---------------------------------------------------------
    def reload(self) -> None:
        """Reload the slot map: open links to new primaries, close those to nodes that are
        no longer primaries, flush every node that lost a slot."""
        rc = self._rc
        if rc is None:
            rc = self._rc = self._open_map()
            reply = self._slots_reply(rc)
        else:
            # A raw CLUSTER SLOTS costs ~0.1 ms; redis-py's reload and the table ~5-10 ms:
            # those only when the map changed (or could not be asked).
            reply = self._slots_reply(rc)
            if reply is not None and reply == self._last_reply:
                return
            rc.nodes_manager.initialize()
        cache = rc.nodes_manager.slots_cache
        owners: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
        nodes: dict[str, Any] = {}
        for slot, holders in cache.items():
            if holders:
                owners[slot] = holders[0].name
                nodes[holders[0].name] = holders[0]
        # redis-py asks a node of its choosing, whose gossip may lag the one asked above:
        # a map that does not name the reply's owners is loaded again at the next check.
        self._last_reply = reply if _names_owners(reply, owners, _node_namer(rc)) else None
        with self._lock:
            if self._stop.is_set():
                return
            old = self._owners
            losers = {o for o, n in zip(old, owners, strict=True) if o is not None and o != n}
            links = dict(self._links)
            for name, node in nodes.items():
                if name not in links:
                    link = links[name] = self._make_link(node)
                    link.sinks = self.sinks
            gone = [links.pop(name) for name in list(links) if name not in nodes]
            # Publish the new routes first, then flush: a lookup that still took the old
            # route finds its link flushed, a fill that took it fails the owner check.
            self._links = links
            self._slots = [None if o is None else links[o] for o in owners]
            self._owners = owners
            self.reloads += 1
        for name in losers:
            if name in links:
                links[name].flush()
        for link in gone:
            link.close()
        if self._off_since is not None:
            self._off_since = None
            log.info("in-process tier for %s: cluster slot map loaded again", self.prefix)

    @staticmethod
    def _slots_reply(rc: Any) -> Any:
        """CLUSTER SLOTS as one node answers it, None if it does not."""
        try:
            node = rc.get_default_node()
            return rc.get_redis_connection(node).execute_command("CLUSTER", "SLOTS")
        except Exception:  # any failure: reload the map through redis-py instead
            return None

    def _ensure_thread(self) -> None:
        if self.disabled:
            return
        if self._pid != os.getpid():  # forked: the parent's lock and map client are not ours
            self._pid, self._rc, self._thread = os.getpid(), None, None
            self._lock = threading.Lock()
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._run, name="cachekit-local-cluster",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and not self._unused():
            try:
                self.reload()
            except Exception as exc:  # never a caller's problem: keys go to Redis meanwhile
                self._rc = self._last_reply = None
                if self._off_since is None:
                    self._off_since = type(exc).__name__
                    log.warning("E070 in-process tier for %s: cannot load the cluster slot "
                                "map (%s); keys of new primaries go to Redis until it loads",
                                self.prefix, type(exc).__name__)
            self._wake.wait(self.lease)
            self._wake.clear()

    def _unused(self) -> bool:
        users = self.users
        if users is None or len(users) or self.retire is None or not self.retire(self):
            return False
        self.close()
        return True

    def close(self) -> None:
        """Stop reloading the map and close every link."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            links, self._links = list(self._links.values()), {}
            self._slots = [None] * REDIS_CLUSTER_HASH_SLOTS
            self._owners = [None] * REDIS_CLUSTER_HASH_SLOTS
        for link in links:
            link.close()
        rc, self._rc = self._rc, None
        if rc is not None:
            try:
                rc.close()
            except Exception:  # closing is best effort
                log.debug("closing the slot map client failed", exc_info=True)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)


__all__ = ["ClusterTier"]
