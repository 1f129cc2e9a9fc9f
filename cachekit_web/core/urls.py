"""Redis URLs: redaction for logs and errors, schemes, and host-list URLs (cluster, Sentinel)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from .errors import ConfigurationError

# Query parameters whose name contains one of these are shown as '***'.
_SECRET_WORDS = ("pass", "key", "secret", "token", "auth")


def redact_url(url: str) -> str:
    """Return ``url`` with any password (and key-like query values) replaced by '***'."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "<unparseable url>"
    # Not urlsplit: a password may hold '/', '?' or '#', which would end its netloc early.
    # Everything before the last '@' is credentials; over-masking is the safe error.
    creds, at, rest = rest.rpartition("@")
    shown = ""
    if at:
        user, colon, _ = creds.partition(":")
        shown = f"{user}:***@" if colon and user else ":***@" if colon else "***@"
    rest = rest.split("#", 1)[0]
    location, qmark, query = rest.partition("?")
    if qmark:
        query = "&".join(
            f"{k}=***" if any(w in k.lower() for w in _SECRET_WORDS) else f"{k}{eq}{v}"
            for k, eq, v in (p.partition("=") for p in query.split("&") if p)
        )
    return f"{scheme}://{shown}{location}{qmark}{query}"


def scheme_of(url: str) -> str:
    """The URL's scheme, lower-cased."""
    return url.split("://", 1)[0].lower() if "://" in url else ""


@dataclass(frozen=True)
class HostsURL:
    """A URL naming several host:port pairs (cluster seeds or sentinels)."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None = field(repr=False)
    path: tuple[str, ...]
    query: dict[str, str] = field(repr=False)

    @property
    def tls(self) -> bool:
        """Whether the scheme asks for TLS (rediss+...)."""
        return self.scheme.startswith("rediss")


def parse_hosts_url(url: str, default_port: int) -> HostsURL:
    """Split ``scheme://[user:pass@]h1:p1,h2:p2/path?query``; raises E042 if malformed."""
    shown = redact_url(url)
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(f"not a URL: {shown}", code="E042")
    rest, _, query = rest.partition("?")
    netloc, _, path = rest.partition("/")
    creds, at, hostlist = netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, pw = creds.partition(":")
        username = unquote(user) or None
        password = unquote(pw) if colon else None
    hosts: list[tuple[str, int]] = []
    for item in hostlist.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [ipv6]:port
            host, _, tail = item[1:].partition("]")
            port_text = tail.lstrip(":")
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        # Checked, not int()-and-catch, and never echoed: with an unquoted '/' in the
        # password, the "port" is a piece of the password.
        if port_text and not (port_text.isascii() and port_text.isdigit()):
            raise ConfigurationError(f"bad port in {shown}; percent-encode special characters "
                                     "in the password", code="E042")
        port = int(port_text) if port_text else default_port
        hosts.append((host, port))
    if not hosts:
        raise ConfigurationError(f"no host:port in {shown}", code="E042")
    return HostsURL(
        scheme=scheme.lower(),
        hosts=tuple(hosts),
        username=username,
        password=password,
        path=tuple(unquote(p) for p in path.split("/") if p),
        query=dict(parse_qsl(query)),
    )
