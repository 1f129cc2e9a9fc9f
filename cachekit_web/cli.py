"""The `cachekit-web` command: explain error codes, check a setup (doctor), make keys."""

from __future__ import annotations

import argparse
import os
import re
import secrets
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .core.errors import REGISTRY, CachekitError, ConfigurationError, markdown_table

_SGR = {"bold": "1", "dim": "2", "red": "1;31", "green": "32", "yellow": "33"}


def colour_enabled(out: TextIO) -> bool:
    """Whether ``out`` gets ANSI colour: a terminal, NO_COLOR unset, TERM not "dumb"."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":  # see no-color.org
        return False
    isatty = getattr(out, "isatty", None)
    return bool(isatty is not None and isatty())


def painter(out: TextIO) -> Callable[[str, str], str]:
    """A function (text, style) -> text, coloured only when ``out`` is a colour terminal."""
    if not colour_enabled(out):
        return lambda text, style: text
    return lambda text, style: f"\x1b[{_SGR[style]}m{text}\x1b[0m"


def normalize_code(code: str) -> str:
    """Spell a typed code the registry's way: "e3", "3" and "E03" all mean E003."""
    match = re.fullmatch(r"[Ee]?0*(\d{1,3})", code.strip())
    return f"E{int(match.group(1)):03d}" if match else code.strip().upper()


def explain(code: str | None, *, list_all: bool = False, markdown: bool = False,
            out: TextIO | None = None) -> int:
    """Print one registry entry, the list of codes, or the Markdown document."""
    out = out or sys.stdout  # looked up per call, so redirected stdout is honoured
    if markdown:
        out.write(markdown_table())
        return 0
    paint = painter(out)
    if list_all or not code:
        for spec in sorted(REGISTRY.values(), key=lambda s: s.code):
            out.write(f"{paint(spec.code, 'bold')}  {spec.category:<15} {spec.title}\n")
        return 0
    found = REGISTRY.get(normalize_code(code))
    if found is None:
        out.write(f"unknown code {code!r}; `cachekit-web explain --list` shows them all\n")
        return 2
    head, _, body = found.explain().partition("\n")
    body = re.sub(r"^(  fix:)", lambda m: paint(m.group(1), "green"), body, flags=re.M)
    out.write(f"{paint(head, 'bold')}\n{body}\n")
    return 0


Check = tuple[str, Callable[[], str]]


class Checks(list[Check]):
    """Checks in order, and the Redis URL they resolved once known (named in fix hints)."""

    redis_url: str | None = None


def run_checks(checks: Sequence[Check], out: TextIO) -> int:
    """Run named checks in order, print each as ok/FAIL with its code; 0 if all pass."""
    from .core.urls import redact_url

    paint = painter(out)
    failed = 0
    for name, check in checks:
        if failed:  # each check builds on the ones before it (settings -> client -> ...)
            out.write(f"  {paint('skip', 'yellow')}  {name}: not run after the failure above\n")
            continue
        try:
            detail = check()
            out.write(f"  {paint('ok', 'green')}    {name}: {detail}\n")
        except CachekitError as exc:
            failed += 1
            url = checks.redis_url if isinstance(checks, Checks) else None
            fix = exc.spec.fix_for(redact_url(url) if url else None)
            if isinstance(exc, ConfigurationError) and exc.hint is None:
                fix = ""  # each line says its fix; the registry's would point at nothing
            message = exc.message.replace("\n", "\n        ")  # one problem a line
            out.write(f"  {paint('FAIL', 'red')}  {name}: [{exc.code}] {message}\n"
                      + (f"        fix: {fix}\n" if fix else ""))
    out.write(paint("all checks passed", "green") + "\n" if not failed
              else paint(f"{failed} check(s) failed", "red") + "\n")
    return 0 if not failed else 1


def doctor_checks(url: str | None, overrides: dict[str, Any] | None = None) -> Checks:
    """The checks `doctor` runs: settings, keys, connectivity, a round trip of a value."""
    from .core.client import CacheClient
    from .core.settings import Settings, env_name_warnings

    state: dict[str, object] = {}
    checks = Checks()

    def settings() -> str:
        extra = dict(overrides or {})
        if url:
            extra["REDIS_URL"] = url
        notes = "".join(f"\nwarning: {note}" for note in env_name_warnings(os.environ))
        try:
            s = Settings.from_env(None, **extra)
        except ConfigurationError as exc:  # the warnings too, they may explain it
            raise ConfigurationError(exc.message + notes, code=exc.code,
                                     suggestion=exc.suggestion) from exc
        checks.redis_url = s.require_url()
        state["settings"] = s
        return "environment and settings are valid" + notes.replace("\n", "\n        ")

    def client() -> str:
        s = state["settings"]
        assert isinstance(s, Settings)
        c = CacheClient(s)
        state["client"] = c
        ring = c.codec.keyring
        mode = "AES-256-GCM" if ring.encrypted else "HMAC-signed" if ring.authenticated else \
            "UNAUTHENTICATED plain msgpack (no MASTER_KEY or SIGNING_KEY: anyone who can " \
            "write to Redis can forge values; pages and fragments are not cached)"
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
        ring = c.codec.keyring
        if not ring.authenticated:
            return ("set, get and delete of an UNAUTHENTICATED value succeeded (neither "
                    "signed nor encrypted: set MASTER_KEY or SIGNING_KEY)")
        mode = "an encrypted" if ring.encrypted else "a signed"
        return f"set, get and delete of {mode} value succeeded"

    def key_rotation() -> str:
        from .core.data.rotation import rotation_status

        c = state["client"]
        assert isinstance(c, CacheClient)
        return rotation_status(c.backend, c.codec)

    checks.extend([("settings", settings), ("client", client), ("connectivity", ping),
                   ("round trip", round_trip), ("key rotation", key_rotation)])
    return checks


README_START = (
    "<!-- settings-table: generated by `make docs` from cachekit_web/core/settings.py -->"
)
README_END = "<!-- end settings-table -->"


def readme_with_settings(text: str) -> str:
    """Return README text with the settings table between its markers regenerated."""
    from .core.settings import settings_markdown

    head, _, rest = text.partition(README_START)
    _, _, tail = rest.partition(README_END)
    return f"{head}{README_START}\n{settings_markdown()}{README_END}{tail}"


def update_readme(path: str) -> int:
    """Rewrite the settings table in the README at ``path``."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    with open(path, "w", encoding="utf-8") as f:
        f.write(readme_with_settings(text))
    return 0


def pending(action: str, url: str | None, out: TextIO) -> int:
    """List, replay or drop the invalidations spooled by processes that exited mid-outage."""
    from .core._sync.pending import apply_invalidations
    from .core.backends import make_backend
    from .core.resilience.pending import PendingDeletes, spool_for
    from .core.settings import Settings

    settings = Settings.from_env(None, **({"REDIS_URL": url} if url else {}))
    target = settings.require_url()
    spool = spool_for(settings, target)
    if spool is None:
        out.write("spooling is off for this configuration (PENDING_SPOOL, memory://)\n")
        return 0
    if action == "list":
        total = files = 0
        for path in [*([spool.path] if spool.path else []), *spool.orphans()]:
            with spool.adopt_peek(path) as batch:
                if batch is None:
                    continue
                files += 1
                total += len(batch)
                shown = ", ".join(batch.keys[:10]) + (" ..." if len(batch.keys) > 10 else "")
                out.write(f"{path.name}: {len(batch)} ({'clear namespace; ' if batch.clear else ''}"
                          f"{shown})\n")
        out.write(f"{total} invalidations in {files} spool files under {spool.directory}\n")
        return 0
    holder = PendingDeletes(settings.PENDING_DELETES_MAX, spool)
    if action == "drop":
        dropped = holder.replay_orphans(lambda keys, clear: None)
        out.write(f"dropped {dropped} invalidations\n")
        return 0
    backend = make_backend(target, settings)
    try:
        prefix = settings.NAMESPACE + ":"
        done = holder.replay_orphans(
            lambda keys, clear: apply_invalidations(backend, prefix, keys, clear))
    except CachekitError as exc:
        out.write(f"[{exc.code}] {exc.message}: nothing was lost, try again later\n")
        return 1
    finally:
        backend.close()
    out.write(f"replayed {done} invalidations\n")
    return 0


def rotate_keys(url: str | None, *, dry_run: bool, batch: int, out: TextIO,
                err: TextIO, force: bool = False) -> int:
    """Re-seal the namespace under the current MASTER_KEY, with a progress bar on a terminal."""
    from tqdm import tqdm

    from .core.client import CacheClient
    from .core.data.rotation import RotationReport, count_entries, rotate, sample_keys
    from .core.settings import Settings

    report = RotationReport(dry_run=dry_run)
    try:
        settings = Settings.from_env(None, **({"REDIS_URL": url} if url else {}))
        client = CacheClient(settings)
    except CachekitError as exc:
        out.write(f"[{exc.code}] {exc.message}\n")
        return 1
    try:
        if not client.codec.keyring.encrypted:
            out.write("[E001] no MASTER_KEY: values are not encrypted, nothing to rotate\n")
            return 1
        if not settings.PREVIOUS_MASTER_KEYS:
            out.write("note: PREVIOUS_MASTER_KEYS is empty: entries under an old key will be "
                      "counted as unreadable\n")
        sample = sample_keys(client.backend, client.codec)
        if sample.looks_swapped and not force:
            out.write(f"[E005] {sample.previous} sampled entries open under a previous key and "
                      "none under MASTER_KEY: are MASTER_KEY and PREVIOUS_MASTER_KEYS swapped? "
                      + ("(dry run: counting anyway)\n" if dry_run else
                         "Nothing was re-sealed; if MASTER_KEY is right, run again with "
                         "--force\n"))
            if not dry_run:
                return 1
        total = count_entries(client.backend, client.codec)
        tty = err.isatty()
        step, mark = max(1, total // 10), 0
        # On a terminal a bar; elsewhere (logs, CI) a plain line every tenth.
        with tqdm(total=total, unit="key", file=err, disable=not tty,
                  desc="dry run" if dry_run else "rotate") as bar:

            def advance(n: int) -> None:
                nonlocal mark
                bar.update(n)
                if not tty and report.seen >= mark + step:
                    mark = report.seen
                    err.write(f"rotate: {report.seen}/{total} keys\n")

            rotate(client.backend, client.codec, dry_run=dry_run, batch=batch,
                   on_batch=advance, report=report)
    except KeyboardInterrupt:
        out.write(f"interrupted: {report.summary()}; run again to finish (entries already "
                  "under the current key are skipped)\n")
        return 130
    except CachekitError as exc:
        out.write(f"[{exc.code}] {exc.message}: {report.summary()} so far; run again to "
                  "finish\n")
        return 1
    finally:
        client.close()
    out.write(report.summary() + "\n")
    if not dry_run and report.unreadable:
        out.write(f"{report.unreadable} entries no key opens were left alone\n")
    return 0


def keygen(*, signing: bool, out: TextIO) -> int:
    """Print a new random MASTER_KEY (64 hex characters), or a SIGNING_KEY with ``signing``."""
    from .core.data.crypto import check_secret, parse_master_key

    for _ in range(100):  # a random key fails the weakness checks with odds of about 0
        try:
            if signing:
                key = secrets.token_urlsafe(32)
                check_secret(key, "SIGNING_KEY")
            else:
                key = secrets.token_hex(32)
                parse_master_key(key)
        except CachekitError:
            continue
        out.write(key + "\n")
        return 0
    raise RuntimeError("the system's random source keeps producing weak keys")  # pragma: no cover


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cachekit-web` command."""
    parser = argparse.ArgumentParser(prog="cachekit-web", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    p_explain = sub.add_parser("explain", help="explain an error code (E003) or list them")
    p_explain.add_argument("code", nargs="?")
    p_explain.add_argument("--list", action="store_true", help="list every code")
    p_explain.add_argument("--markdown", action="store_true", help="print docs/errors.md")
    sub.add_parser("settings", help="print the settings table (Markdown)")
    p_keygen = sub.add_parser("keygen", help="print a new random MASTER_KEY (or SIGNING_KEY)")
    p_keygen.add_argument("--signing", action="store_true",
                          help="a SIGNING_KEY (HMAC-signed values) instead of a MASTER_KEY")
    p_doctor = sub.add_parser("doctor", help="check configuration, connectivity and a round trip")
    p_doctor.add_argument("url", nargs="?", help="Redis URL (default: CACHEKIT_REDIS_URL)")
    p_pending = sub.add_parser(
        "pending", help="list, replay or drop invalidations spooled during an outage")
    p_pending.add_argument("action", nargs="?", default="list", choices=("list", "replay", "drop"))
    p_pending.add_argument("url", nargs="?", help="Redis URL (default: CACHEKIT_REDIS_URL)")
    p_rotate = sub.add_parser(
        "rotate", help="re-seal every entry under the current MASTER_KEY (resumable)")
    p_rotate.add_argument("url", nargs="?", help="Redis URL (default: CACHEKIT_REDIS_URL)")
    p_rotate.add_argument("--dry-run", action="store_true", help="count, write nothing")
    p_rotate.add_argument("--batch", type=int, default=500, help="keys per SCAN batch")
    p_rotate.add_argument("--force", action="store_true",
                          help="re-seal even if the keys look swapped (E005)")
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["readme"] and len(argv) == 2:  # `make docs`; kept out of help and errors
        return update_readme(argv[1])
    args = parser.parse_args(argv)
    if args.command == "keygen":
        return keygen(signing=args.signing, out=sys.stdout)
    if args.command == "rotate":
        return rotate_keys(args.url, dry_run=args.dry_run, batch=args.batch, out=sys.stdout,
                           err=sys.stderr, force=args.force)
    if args.command == "explain":
        return explain(args.code, list_all=args.list, markdown=args.markdown)
    if args.command == "settings":
        from .core.settings import settings_markdown

        sys.stdout.write(settings_markdown())
        return 0
    if args.command == "pending":
        return pending(args.action, args.url, sys.stdout)
    print("cachekit-web doctor")
    return run_checks(doctor_checks(args.url), sys.stdout)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
