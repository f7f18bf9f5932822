"""`collector`: the operator's command line."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from collector.adapters import registered_adapters
from collector.config import (
    Config,
    ConfigError,
    build_config,
    format_duration,
    load_config,
    parse_duration,
)
from collector.describe import describe, redacted_database_url

CONFIG_HELP = "Configuration file (env COLLECTOR_CONFIG)."
log = logging.getLogger("collector")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # aiohttp logs every refused connection at ERROR; our poller already classifies them.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


@contextmanager
def _database_errors(config: Config) -> Iterator[None]:
    """A database that is down or unmigrated is an operator's problem to fix, not a traceback."""
    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        url = redacted_database_url(config.collector.database_url)
        raise click.ClickException(f"database {url}: {type(exc).__name__}: {first[:300]}") from None


def _load(path: str) -> Config:
    try:
        return load_config(path, adapters=registered_adapters())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.version_option(package_name="livestream-collector")
def main(log_level: str) -> None:
    """Collect live-commerce counters from TikTok, Shopee and Facebook into a database and Prometheus."""
    _setup_logging(log_level)


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    envvar="COLLECTOR_CONFIG",
    default="config.toml",
    show_default=True,
    help=CONFIG_HELP,
)


@main.command()
@config_option
def run(config_path: str) -> None:
    """Run the service: migrate the database, poll every target, serve /metrics until Ctrl-C."""
    config = _load(config_path)
    _run_service(config)


def _run_service(config: Config) -> None:
    from collector.service import run_service

    asyncio.run(run_service(config))


@main.command()
@config_option
def once(config_path: str) -> None:
    """Poll every target once, store the samples and print what was found."""
    from collector.service import poll_once

    config = _load(config_path)
    with _database_errors(config):
        records = asyncio.run(poll_once(config))
    table = Table(title=f"{len(records)} targets polled", show_lines=False)
    for column in ("target", "platform", "kind", "outcome", "values"):
        table.add_column(column, overflow="fold")
    by_name = {t.name: t for t in config.targets}
    for record in records:
        target = by_name[record.target]
        values = "  ".join(f"{s.metric.value}={_number(s.value)}" for s in record.samples)
        table.add_row(record.target, target.platform, target.kind, record.outcome.value, values)
    Console().print(table)


@main.group()
def targets() -> None:
    """Inspect configured targets."""


@targets.command("list")
@config_option
def targets_list(config_path: str) -> None:
    """List configured targets with their platform, kind, fields and interval."""
    config = _load(config_path)
    table = Table()
    for column in ("name", "platform", "kind", "fields", "interval", "campaign", "enabled"):
        table.add_column(column)
    for t in config.targets:
        fields = " ".join(f"{k}={v}" for k, v in t.params.items())
        table.add_row(
            t.name,
            t.platform,
            t.kind,
            fields,
            format_duration(t.interval),
            t.campaign or "",
            "yes" if t.enabled else "no",
        )
    Console().print(table)


@main.command()
@config_option
def status(config_path: str) -> None:
    """Each target's last outcome, last success and next due time, as the service recorded them."""
    from collector.store import Store

    config = _load(config_path)

    async def rows():  # type: ignore[no-untyped-def]
        store = Store(config.collector.database_url)
        try:
            return await store.target_status()
        finally:
            await store.close()

    configured = {t.name for t in config.targets}
    table = Table()
    for column in ("target", "platform", "kind", "last outcome", "at", "last success", "next due", "detail"):
        table.add_column(column, overflow="fold")
    with _database_errors(config):
        found = asyncio.run(rows())
    for row in found:
        if row.name not in configured:
            continue
        table.add_row(
            row.name,
            row.platform,
            row.kind,
            row.last_outcome or "never polled",
            _ago(row.last_outcome_at),
            _ago(row.last_success_at),
            _ago(row.next_due_at),
            row.last_detail or "",
        )
    Console().print(table)
    _print_credentials([row for row in found if row.name in configured])


def _print_credentials(rows: list) -> None:  # type: ignore[type-arg]
    """A section of its own: when each target's API access token expires (refreshed ahead where a
    refresh token is configured; an expired one without it stops that target)."""
    expiring = [row for row in rows if row.credentials_expire_at is not None]
    if not expiring:
        return
    click.echo("\nAPI access tokens (hết hạn / expire):")
    for row in expiring:
        left = (row.credentials_expire_at - datetime.now(UTC)).total_seconds()
        days, hours = divmod(max(0, round(left)) // 3600, 24)
        state = (
            "EXPIRED"
            if left <= 0
            else f"in {days}d {hours}h"
            if days
            else f"in {hours}h {round(left) % 3600 // 60}m"
        )
        click.echo(f"  {row.name}: {state} ({row.credentials_expire_at:%Y-%m-%d %H:%M} UTC)")


def _ago(when: datetime | None) -> str:
    if when is None:
        return "-"
    seconds = (when - datetime.now(UTC)).total_seconds()
    span = format_duration(max(1, round(abs(seconds))))
    return f"in {span}" if seconds > 0 else f"{span} ago"


@main.command("check-config")
@config_option
def check_config(config_path: str) -> None:
    """Validate the configuration and print the effective settings (secrets redacted)."""
    config = _load(config_path)
    for key, value in describe(config):
        click.echo(f"{key} = {value}")
    per_platform = Counter(t.platform for t in config.targets)
    summary = ", ".join(f"{platform} {count}" for platform, count in sorted(per_platform.items()))
    click.echo(f"ok: {len(config.targets)} targets ({summary or 'none'})", err=True)


@main.group()
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@config_option
def db_upgrade(config_path: str) -> None:
    """Apply Alembic migrations up to the newest schema."""
    from collector.migrate import upgrade

    config = _load(config_path)
    with _database_errors(config):
        upgrade(config.collector.database_url)
    click.echo("database schema is up to date", err=True)


def _when(text: str | None) -> datetime | None:
    """An ISO 8601 time (UTC if no zone) or a duration meaning that long ago (`2h`)."""
    if text is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"{text!r}: use ISO 8601 (2025-09-09T20:00:00Z) or a duration (2h)"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def iso_utc(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


EXPORT_HEADER = ("observed_at", "platform", "target", "metric", "value", "provenance", "session_id")


@main.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("--since", help="Start (inclusive): ISO 8601 time or a duration ago, e.g. 2h.")
@click.option("--until", help="End (exclusive): ISO 8601 time or a duration ago.")
@click.option("--target", "target_names", multiple=True, help="Only this target (repeatable).")
@click.option("--metric", "metrics", multiple=True, help="Only this metric (repeatable).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
def export(
    config_path: str,
    fmt: str,
    since: str | None,
    until: str | None,
    target_names: Sequence[str],
    metrics: Sequence[str],
    output: Path | None,
) -> None:
    """Export stored samples, oldest first (observed_at in ISO 8601 UTC)."""
    config = _load(config_path)
    start, end = _when(since), _when(until)
    stream = output.open("w", newline="", encoding="utf-8") if output else sys.stdout
    try:
        with _database_errors(config):
            count = asyncio.run(_export_csv(config, stream, start, end, target_names, metrics))
    finally:
        if output:
            stream.close()
    click.echo(f"exported {count} samples", err=True)


async def _export_csv(config: Config, stream, since, until, target_names, metrics) -> int:  # type: ignore[no-untyped-def]
    from collector.store import Store

    store = Store(config.collector.database_url)
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(EXPORT_HEADER)
    count = 0
    try:
        async for row in store.export_rows(since=since, until=until, targets=target_names, metrics=metrics):
            writer.writerow(
                (
                    iso_utc(row.observed_at),
                    row.platform,
                    row.target,
                    row.metric,
                    _number(row.value),
                    row.provenance,
                    row.session_id or "",
                )
            )
            count += 1
    finally:
        await store.close()
    return count


@main.command()
@click.option("--listen", default="127.0.0.1:8900", show_default=True, help="host:port (port 0 picks one).")
@click.option("--scenario", default="demo", show_default=True, help="Scripted scenario to serve.")
@click.option("--seed", default=1, show_default=True, help="Seed: same seed, same counters.")
@click.option("--speed", default=1.0, show_default=True, help="Scenario seconds per real second.")
@click.option("--freeze-at", type=float, help="Hold the scenario clock at this many seconds in.")
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="MODE:MATCH[:k=v,...]",
    help="Inject a fault into matching requests, e.g. 429:shop_vn:retry_after=5,count=3 (repeatable; "
    "modes: 429 503 500 slow reset empty truncate captcha login layout redirect_foreign redirect_private).",
)
def simulate(
    listen: str, scenario: str, seed: int, speed: float, freeze_at: float | None, faults: Sequence[str]
) -> None:
    """Serve the documented platform pages and APIs on loopback, with counters that evolve."""
    from simulator.app import serve
    from simulator.faults import parse_rule

    try:
        rules = [parse_rule(f) for f in faults]
    except (TypeError, ValueError) as exc:
        raise click.BadParameter(str(exc), param_hint="--fault") from None
    host, _, port = listen.rpartition(":")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                host,
                int(port),
                scenario=scenario,
                seed=seed,
                speed=speed,
                freeze_at=freeze_at,
                faults=rules,
                ready=lambda url: click.echo(f"simulator listening on {url}", err=True),
            )
        )


@main.command()
@click.option("--simulator-listen", default="127.0.0.1:8900", show_default=True)
@click.option("--seed", default=1, show_default=True)
def demo(simulator_listen: str, seed: int) -> None:
    """Start the simulator and the collector polling it (SQLite in data/, metrics on :9108)."""
    import threading

    from simulator.app import demo_env, serve

    host, _, port = simulator_listen.rpartition(":")
    ready = threading.Event()
    sim_url: list[str] = []

    def on_ready(url: str) -> None:
        sim_url.append(url)
        ready.set()

    thread = threading.Thread(
        target=lambda: asyncio.run(serve(host, int(port), seed=seed, ready=on_ready)), daemon=True
    )
    thread.start()
    if not ready.wait(15):
        raise click.ClickException(f"the simulator did not start on {simulator_listen}")
    text = files("collector").joinpath("demo.toml").read_text(encoding="utf-8")
    config = build_config(
        _toml(text.replace("{simulator}", sim_url[0])),
        source="<embedded demo>",
        adapters=registered_adapters(),
        env={**os.environ, **demo_env()},
    )
    click.echo(f"simulator:  {sim_url[0]}  (ground truth at {sim_url[0]}/_sim/truth)")
    click.echo(f"database:   {config.collector.database_url}")
    click.echo(f"metrics:    http://{config.collector.metrics_listen}/metrics")
    click.echo(f"targets:    {', '.join(t.name for t in config.targets)}")
    click.echo("export:     .venv/bin/collector export --format csv   (same SQLite file as config.toml)")
    click.echo("Ctrl-C to stop.")
    _run_service(config)


def _toml(text: str) -> dict:  # type: ignore[type-arg]
    import tomllib

    return tomllib.loads(text)
