"""The `cachekit-web` command: explain error codes, check a setup (doctor)."""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .core.errors import REGISTRY, CachekitError, markdown_table


def explain(code: str | None, *, list_all: bool = False, markdown: bool = False,
            out: TextIO = sys.stdout) -> int:
    """Print one registry entry, the list of codes, or the Markdown document."""
    if markdown:
        out.write(markdown_table())
        return 0
    if list_all or not code:
        for spec in REGISTRY.values():
            out.write(f"{spec.code}  {spec.category:<15} {spec.title}\n")
        return 0
    found = REGISTRY.get(code.upper())
    if found is None:
        out.write(f"unknown code {code!r}; `cachekit-web explain --list` shows them all\n")
        return 2
    out.write(found.explain() + "\n")
    return 0


Check = tuple[str, Callable[[], str]]


def run_checks(checks: Sequence[Check], out: TextIO) -> int:
    """Run named checks in order, print each as ok/FAIL with its code; 0 if all pass."""
    failed = 0
    for name, check in checks:
        try:
            detail = check()
            out.write(f"  ok    {name}: {detail}\n")
        except CachekitError as exc:
            failed += 1
            out.write(f"  FAIL  {name}: [{exc.code}] {exc.message}\n        fix: {exc.spec.fix}\n")
    out.write("all checks passed\n" if not failed else f"{failed} check(s) failed\n")
    return 0 if not failed else 1


def doctor_checks(url: str | None, overrides: dict[str, Any] | None = None) -> list[Check]:
    """The checks `doctor` runs: settings, keys, connectivity, a sealed round trip."""
    from .core.client import CacheClient
    from .core.settings import Settings

    state: dict[str, object] = {}

    def settings() -> str:
        extra = dict(overrides or {})
        if url:
            extra["REDIS_URL"] = url
        s = Settings.from_env(None, **extra)
        s.require_url()
        state["settings"] = s
        return "environment and settings are valid"

    def client() -> str:
        s = state["settings"]
        assert isinstance(s, Settings)
        c = CacheClient(s)
        state["client"] = c
        ring = c.codec.keyring
        mode = "AES-256-GCM" if ring.encrypted else "HMAC-signed" if ring.authenticated else \
            "plain msgpack (no MASTER_KEY or SIGNING_KEY)"
        fp = f", key fingerprint {ring.fingerprint}" if ring.fingerprint else ""
        return f"{c.describe()}, values {mode}{fp}"

    def ping() -> str:
        c = state["client"]
        assert isinstance(c, CacheClient)
        latency = c.backend.ping()
        info = c.backend.info()
        version = info.get("redis_version", info.get("server", "?"))
        return f"PING {latency * 1000:.2f} ms, server {version}"

    def round_trip() -> str:
        c = state["client"]
        assert isinstance(c, CacheClient)
        key, value = f"doctor:{secrets.token_hex(4)}", {"probe": secrets.token_hex(8)}
        fk = c.full_key(key)
        c.backend.set(fk, c.codec.encode(fk.encode(), value), 30)
        raw = c.backend.get(fk)
        c.backend.delete(fk)
        if raw is None or c.codec.decode(fk.encode(), raw).value != value:
            raise CachekitError("round trip returned a different value", code="E021")
        return "set, get and delete of a sealed value succeeded"

    return [("settings", settings), ("client", client), ("connectivity", ping),
            ("round trip", round_trip)]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cachekit-web` command."""
    parser = argparse.ArgumentParser(prog="cachekit-web", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_explain = sub.add_parser("explain", help="explain an error code (E003) or list them")
    p_explain.add_argument("code", nargs="?")
    p_explain.add_argument("--list", action="store_true", help="list every code")
    p_explain.add_argument("--markdown", action="store_true", help="print docs/errors.md")
    p_doctor = sub.add_parser("doctor", help="check configuration, connectivity and a round trip")
    p_doctor.add_argument("url", nargs="?", help="Redis URL (default: CACHEKIT_REDIS_URL)")
    args = parser.parse_args(argv)
    if args.command == "explain":
        return explain(args.code, list_all=args.list, markdown=args.markdown)
    print("cachekit-web doctor")
    return run_checks(doctor_checks(args.url), sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
