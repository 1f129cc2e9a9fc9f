"""`flask cachekit ...`: doctor, explain, keygen, stats and clear for the current app's cache."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any, cast

import click
from flask.cli import AppGroup, ScriptInfo

from .. import cli as core_cli
from ..core.errors import CachekitError
from ..core.maintenance import clear_in_batches, count_keys

if TYPE_CHECKING:
    from .extension import Cache

# Namespaces larger than this get a progress bar while they are cleared.
PROGRESS_THRESHOLD = 1000


def make_group(cache: Cache) -> AppGroup:
    """The `cachekit` command group bound to ``cache``."""
    group = AppGroup("cachekit", help="Inspect and manage this app's cachekit cache.")

    @group.command("doctor")
    def doctor() -> None:
        """Check settings, connectivity and a sealed round trip."""
        settings = cache.settings
        overrides = {name: getattr(settings, name) for name in settings.names()}
        click.echo(f"cachekit doctor ({cache.client.describe()}, namespace "
                   f"{settings.NAMESPACE!r})")
        rc = core_cli.run_checks(core_cli.doctor_checks(settings.REDIS_URL, overrides),
                                 sys.stdout)
        raise SystemExit(rc)

    @group.command("explain")
    @click.argument("code", required=False)
    @click.option("--list", "list_all", is_flag=True, help="List every error code.")
    def explain(code: str | None, list_all: bool) -> None:
        """Explain an error code (E003), or list them all."""
        raise SystemExit(core_cli.explain(code, list_all=list_all, out=sys.stdout))

    @group.command("keygen", with_appcontext=False)
    @click.option("--signing", is_flag=True, help="A SIGNING_KEY instead of a MASTER_KEY.")
    def keygen(signing: bool) -> None:
        """Print a new random CACHEKIT_MASTER_KEY (or CACHEKIT_SIGNING_KEY)."""
        raise SystemExit(core_cli.keygen(signing=signing, out=sys.stdout))

    @group.command("stats")
    @click.option("--json", "as_json", is_flag=True, help="Print the health report as JSON.")
    def stats(as_json: bool) -> None:
        """Status, hit rate, breaker, errors and key count of this app's namespace."""
        report = cache.health()
        if as_json:
            click.echo(json.dumps(report.as_dict(), indent=2, default=str))
            return
        m = report.metrics
        hit_rate = m.get("hit_rate")
        click.echo(f"status:     {report.status}")
        click.echo(f"backend:    {report.backend}  namespace: {report.namespace}")
        click.echo(f"ping:       {report.ping_ms if report.ping_ms is not None else '-'} ms")
        fleet = report.fleet
        if fleet.get("scope") == "fleet":
            click.echo(f"scope:      fleet of {len(fleet['processes'])} live processes "
                       "(figures are their sum)")
        else:
            click.echo(f"scope:      LOCAL, this process only: {fleet.get('reason')}")
        click.echo(f"breaker:    {report.breaker['state']} in this process "
                   f"(opened {report.breaker['opened_count']} times); "
                   f"{fleet.get('breakers_open', 0)} open in the fleet")
        for p in fleet.get("processes", []):
            if not p.get("this"):
                click.echo(f"  process {p['host']}:{p['pid']} breaker={p['breaker']} "
                           f"calls={p['ops']} hits={p['hits']} misses={p['misses']} "
                           f"errors={p['errors']}")
        click.echo("hit rate:   " + ("-" if hit_rate is None else f"{hit_rate * 100:.1f}%"))
        click.echo("totals:     " + ", ".join(f"{k}={v}" for k, v in m["totals"].items()))
        try:
            click.echo(f"keys:       {count_keys(cache.client)}")
        except CachekitError as exc:
            click.echo(f"keys:       unknown ([{exc.code}] {exc.message})")
        for err in report.errors_explained():
            click.echo(f"error {err['code']} x{err['count']}: {err['title']} -- {err['fix']}")
        if report.error:
            click.echo(f"[{report.error['code']}] {report.error['message']}")

    @group.command("clear")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def clear(yes: bool) -> None:
        """Delete every key of this app's namespace (other namespaces are untouched)."""
        client = cache.client
        try:
            total = count_keys(client)
        except CachekitError as exc:
            raise click.ClickException(f"[{exc.code}] {exc.message}") from exc
        if not total:
            click.echo(f"namespace {client.namespace!r} is already empty")
            return
        if not yes:
            click.confirm(f"Delete {total} keys of namespace {client.namespace!r} on "
                          f"{client.describe()}?", abort=True)
        removed = 0
        try:
            if total > PROGRESS_THRESHOLD:
                with click.progressbar(length=total, label="clearing") as bar:
                    for n in clear_in_batches(client):
                        removed += n
                        bar.update(n)
            else:
                removed = sum(clear_in_batches(client))
        except CachekitError as exc:
            raise click.ClickException(f"[{exc.code}] {exc.message} (removed {removed})") \
                from exc
        click.echo(f"removed {removed} keys from namespace {client.namespace!r}")

    return group


def _reported(exc: CachekitError) -> core_cli.Check:
    def check() -> str:
        raise exc
    return ("settings", check)


def _run(name: str, **params: Any) -> None:
    """Run the app's own `cachekit <name>`; report an app that failed to start instead."""
    ctx = click.get_current_context()
    if name == "explain":  # needs no app
        raise SystemExit(core_cli.explain(params["code"], list_all=params["list_all"],
                                          out=sys.stdout))
    if name == "keygen":
        raise SystemExit(core_cli.keygen(signing=params["signing"], out=sys.stdout))
    try:
        app = ctx.ensure_object(ScriptInfo).load_app()
    except CachekitError as exc:  # init_app refused the configuration (E040, E041...)
        if name == "doctor":
            click.echo("cachekit doctor (the app did not start)")
            raise SystemExit(core_cli.run_checks([_reported(exc)], sys.stdout)) from None
        raise click.ClickException(f"the app did not start: [{exc.code}] {exc.message}\n"
                                   f"fix: {exc.spec.fix}") from None
    own = app.cli.commands.get("cachekit")
    if not isinstance(own, click.Group) or name not in own.commands:
        raise click.ClickException("this app has no cachekit_web.flask.Cache: call "
                                   "cache.init_app(app)")
    ctx.invoke(own.commands[name], **params)


def _plugin_group() -> click.Group:
    """The `cachekit` group every app gets through the flask.commands entry point."""
    group = click.Group("cachekit", help="Inspect and manage this app's cachekit cache.")
    # The app-bound group's names, parameters and help; its callbacks never run here.
    template = make_group(cast("Cache", None))
    for name, command in template.commands.items():
        group.add_command(click.Command(
            name, params=command.params, help=command.help, short_help=command.short_help,
            callback=lambda _name=name, **params: _run(_name, **params)))
    return group


cli = _plugin_group()
