"""Connection options for the Cluster and Sentinel backends, read from their URLs and settings."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ..settings import Settings
from ..urls import HostsURL, parse_hosts_url, redact_url
from .common import tls_options


def opted_in(query: dict[str, str], name: str) -> bool:
    """Whether a URL's query turns ``name`` on (1, true, yes)."""
    return query.get(name, "").lower() in ("1", "true", "yes")


def cluster_spec(url: str) -> HostsURL:
    """The seeds of a redis+cluster:// URL; E042 for another scheme or a database other than 0."""
    shown = redact_url(url)
    spec = parse_hosts_url(url, 6379)
    if spec.scheme not in ("redis+cluster", "rediss+cluster"):
        raise ConfigurationError(f"not a cluster URL: {shown}", code="E042")
    if spec.path and spec.path != ("0",):
        raise ConfigurationError(
            f"Redis Cluster has only database 0, not {'/'.join(spec.path)!r} in {shown}",
            code="E042")
    return spec


def node_options(settings: Settings, tls: bool) -> dict[str, Any]:
    """Connection keyword arguments for one data node, from settings."""
    options: dict[str, Any] = {
        "socket_timeout": settings.SOCKET_TIMEOUT,
        "socket_connect_timeout": settings.SOCKET_CONNECT_TIMEOUT,
        "health_check_interval": settings.HEALTH_CHECK_INTERVAL,
        "max_connections": settings.CONNECTION_POOL_SIZE,
    }
    if tls:
        options["ssl"] = True
        options.update(tls_options(settings))
    return options
