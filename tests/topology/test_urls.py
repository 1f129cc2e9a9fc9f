"""Topology URLs: parsing, validation, redaction, dispatch (no server needed)."""

from __future__ import annotations

import pytest

from cachekit_web import CacheClient
from cachekit_web.core.backends.cluster import ClusterBackend, parse_hosts_url
from cachekit_web.core.backends.sentinel import ReplicatedRedisBackend, SentinelBackend
from cachekit_web.core.client import make_backend
from cachekit_web.core.errors import ConfigurationError
from cachekit_web.core.keys import hash_tag, lock_key
from cachekit_web.core.settings import Settings


def test_cluster_url_with_several_hosts_and_password() -> None:
    spec = parse_hosts_url("rediss+cluster://app:s3cr%40t@10.0.0.1:7000,10.0.0.2,[::1]:7002", 6379)
    assert spec.tls and spec.scheme == "rediss+cluster"
    assert spec.hosts == (("10.0.0.1", 7000), ("10.0.0.2", 6379), ("::1", 7002))
    assert (spec.username, spec.password) == ("app", "s3cr@t")
    assert "s3cr" not in repr(spec)


def test_sentinel_url_service_and_db() -> None:
    spec = parse_hosts_url("redis+sentinel://:pw@h1:26379,h2:26380/mymaster/2", 26379)
    assert spec.hosts == (("h1", 26379), ("h2", 26380))
    assert spec.path == ("mymaster", "2") and spec.password == "pw" and spec.username is None


@pytest.mark.parametrize("url", [
    "redis+cluster://",
    "redis+cluster://h:notaport",
    "redis+cluster://h:7000/3",
    "redis+sentinel://h:26379",
    "redis+sentinel://h:26379/svc/notadb",
])
def test_bad_topology_urls_are_e042(url: str) -> None:
    with pytest.raises(ConfigurationError) as err:
        make_backend(url, Settings(REDIS_URL=url))
    assert err.value.code == "E042"


def test_dispatch_by_scheme_without_connecting() -> None:
    # Nothing listens on these ports: building a client must not connect (fail open at boot).
    cluster = make_backend("redis+cluster://127.0.0.1:1,127.0.0.1:2", Settings())
    assert isinstance(cluster, ClusterBackend)
    sentinel = make_backend("redis+sentinel://:pw@127.0.0.1:1/svc/0", Settings())
    assert isinstance(sentinel, SentinelBackend) and sentinel.service == "svc"
    replicated = make_backend("redis://127.0.0.1:1/0",
                              Settings(REPLICA_URLS=("redis://:pw@127.0.0.1:2/0",)))
    assert isinstance(replicated, ReplicatedRedisBackend)
    assert "pw" not in replicated.describe() and "***" in replicated.describe()
    for b in (cluster, sentinel, replicated):
        b.close()


def test_cluster_down_at_start_fails_open() -> None:
    c = CacheClient.from_url("redis+cluster://127.0.0.1:1", SOCKET_CONNECT_TIMEOUT=0.2)
    assert c.get("k") is None and c.set("k", 1) is False
    assert c.health().status == "down"
    c.close()


def test_replica_urls_from_env_and_redacted() -> None:
    s = Settings.from_env({"CACHEKIT_REDIS_URL": "redis://p:6379/0",
                           "CACHEKIT_REPLICA_URLS": "redis://:x@r1:6379/0,redis://r2:6379/0"})
    assert s.REPLICA_URLS == ("redis://:x@r1:6379/0", "redis://r2:6379/0")
    assert s.public_dict()["REPLICA_URLS"] == ["redis://:***@r1:6379/0", "redis://r2:6379/0"]


def test_hash_tags() -> None:
    assert hash_tag("a{b}c") == "b" and hash_tag("a{}c") is None and hash_tag("abc") is None
    assert lock_key("ns:k") == "{ns:k}!lock"
    assert lock_key("ns:{user1}:k") == "!lock:ns:{user1}:k"  # keeps the key's own tag
    assert lock_key("ns:{k") == "{ns:{k}!lock"  # tag is "ns:{k" = the whole key
