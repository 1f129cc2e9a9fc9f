"""The test cluster itself: start() returns only once every node agrees on the topology.

A replica that a surviving primary has not heard of yet can never be promoted: a
primary drops the failover-auth requests of a node it does not know, and once the
replica's primary is dead nobody is left to introduce it (only MEET or gossip from a
known node adds a node). test_cluster_failover_to_replica_is_followed met that
when the primary was killed right after start() returned.
"""

from __future__ import annotations

from .servers import LocalCluster


def _view(cluster: LocalCluster, index: int) -> dict[str, tuple[str, str, int]]:
    """Node id -> (role, its primary's id or '-', config epoch), as one node sees them."""
    node = [*cluster.nodes, *cluster.replicas][index]
    with cluster.client(node) as c:
        text = c.execute_command("CLUSTER", "NODES").decode()
    out = {}
    for line in text.splitlines():
        node_id, _addr, flags, master, _ping, _pong, epoch = line.split()[:7]
        roles = set(flags.split(",")) - {"myself"}
        role = "master" if "master" in roles else "slave" if "slave" in roles else flags
        out[node_id] = (role, master, int(epoch))
    return out


def test_every_node_knows_every_replica_when_start_returns() -> None:
    with LocalCluster(3, replicas=2) as cluster:
        ids = []
        for node in [*cluster.nodes, *cluster.replicas]:
            with cluster.client(node) as c:
                ids.append(c.cluster("myid"))
        ids = [i.decode() if isinstance(i, bytes) else i for i in ids]
        views = [_view(cluster, i) for i in range(len(ids))]
        for seen in views:
            assert sorted(seen) == sorted(ids)  # no node unknown, none missing
        assert all(seen == views[0] for seen in views), views  # one topology, everywhere
        for r, replica in enumerate(ids[len(cluster.nodes):]):
            assert views[0][replica][:2] == ("slave", ids[r])  # replicas[r] follows nodes[r]
        epochs = [views[0][i][2] for i in ids[:len(cluster.nodes)]]
        # Distinct, as redis-cli --cluster create sets them: no collision left to settle.
        assert len(set(epochs)) == len(epochs) and 0 not in epochs, epochs
