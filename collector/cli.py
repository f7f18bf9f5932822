"""`collector`: the operator's command line."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import os
import re
import sys
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import click
import orjson

from collector.backfill_cli import backfill
from collector.cli_common import (
    SetupFailed,
    config_option,
    database_errors,
    format_option,
    load_config_or_exit,
    show,
    startup_errors,
    when,
)
from collector.config import (
    Config,
)
from collector.describe import describe
from collector.fleet_view import holdings, replicas
from collector.jobs import JobBook
from collector.report_format import LANGS as REPORT_LANGS
from collector.report_render import FORMATS as REPORT_FORMATS
from collector.startup import listen_problem, os_problem
from collector.views import (
    fleet_json,
    fleet_listing,
    fleet_summary,
    instances_json,
    instances_lines,
    iso_utc,
    number,
    once_json,
    once_listing,
    status_json,
    status_listing,
    targets_json,
    targets_listing,
)

if TYPE_CHECKING:
    from collector.store import ExportRow


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
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
)
@click.version_option(package_name="livestream-collector")
def main(log_level: str) -> None:
    """Collect live-commerce counters (TikTok, Shopee, Facebook lives; Tiki, Sendo, Lazada shops) into a
    database and Prometheus."""
    _setup_logging(log_level)


@main.command()
@config_option
def run(config_path: str) -> None:
    """Run the service: migrate the database, poll every target, serve /metrics until Ctrl-C."""
    config = load_config_or_exit(config_path)
    _run_service(config)


def _run_service(config: Config) -> None:
    from collector.service import run_service

    with startup_errors():
        asyncio.run(run_service(config))


@main.command()
@config_option
@format_option
def once(config_path: str, fmt: str) -> None:
    """Poll every target once, store the samples and print what was found (values or why not)."""
    from collector.service import poll_once

    config = load_config_or_exit(config_path)
    with database_errors(config):
        records = asyncio.run(poll_once(config))
    show(fmt, once_listing(config, records), once_json(config, records))
    outcomes = Counter(r.outcome.value for r in records)
    summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
    click.echo(f"{len(records)} targets polled: {summary or 'none'}", err=True)


@main.group()
def targets() -> None:
    """Inspect configured targets."""


@targets.command("list")
@config_option
@format_option
def targets_list(config_path: str, fmt: str) -> None:
    """List configured targets: platform, kind, interval, whether enabled, then their fields and campaign."""
    config = load_config_or_exit(config_path)
    show(fmt, targets_listing(config.targets), targets_json(config.targets))


@main.command()
@config_option
@format_option
def status(config_path: str, fmt: str) -> None:
    """Each target's last outcome, last success and next due time as the service recorded them, and why
    the last poll failed."""
    from collector.store import Store

    config = load_config_or_exit(config_path)

    async def rows():  # type: ignore[no-untyped-def]
        store = Store(config.collector.database_url)
        try:
            now = datetime.now(UTC)
            return (
                await store.target_status(),
                await JobBook(store).live_instances(now),
                await holdings(store.engine, now),
            )
        finally:
            await store.close()

    with database_errors(config):
        found, instances, held = asyncio.run(rows())
    now = datetime.now(UTC)
    document = status_json(config, found, held) | {"instances": instances_json(instances)}
    show(fmt, status_listing(config, found, now, held if config.fleet.enabled or held else None), document)
    if fmt == "text":
        for line in instances_lines(instances, now):
            click.echo(line)
        _print_credentials([row for row in found if row.name in {t.name for t in config.targets}])


@main.command()
@config_option
@format_option
def fleet(config_path: str, fmt: str) -> None:
    """The replicas of a fleet (`[fleet] enabled = true`): each one's heartbeat and how many targets it
    holds, and any enabled target no live replica holds. `collector status` shows who holds which."""
    from collector.store import Store

    config = load_config_or_exit(config_path)

    async def rows():  # type: ignore[no-untyped-def]
        store = Store(config.collector.database_url)
        try:
            now = datetime.now(UTC)
            return await replicas(store.engine, now), await holdings(store.engine, now)
        finally:
            await store.close()

    with database_errors(config):
        found, held = asyncio.run(rows())
    now = datetime.now(UTC)
    show(fmt, fleet_listing(config, found, now), fleet_json(config, found, held, now))
    if fmt == "text":
        for line in fleet_summary(config, found, held, now):
            click.echo(line)


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


@main.command()
@config_option
def reload(config_path: str) -> None:
    """Make the running service read its configuration file again: added targets start, removed ones
    stop, changed ones start over, the rest keep their state. A file with problems is refused whole
    (exit 2, nothing changes); SIGHUP to the service does the same."""
    config = load_config_or_exit(config_path)  # the same checks the service makes, before bothering it
    listen = config.collector.metrics_listen
    host = "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host
    url = f"http://{host}:{listen.port}/-/reload"
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=60) as resp:
            outcome = orjson.loads(resp.read())
    except urllib.error.HTTPError as exc:
        outcome = orjson.loads(exc.read())
    except OSError as exc:
        raise SetupFailed(
            f"collector.metrics_listen: no collector answers at {url} ({exc}); is `collector run` running?"
        ) from None
    click.echo(outcome["summary"], err=not outcome["ok"])
    sys.exit(0 if outcome["ok"] else 1)


@main.command("check-config")
@config_option
def check_config(config_path: str) -> None:
    """Validate the configuration and print the effective settings (secrets redacted)."""
    config = load_config_or_exit(config_path)
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

    config = load_config_or_exit(config_path)
    with database_errors(config):
        upgrade(config.collector.database_url)
    click.echo("database schema is up to date", err=True)


EXPORT_HEADER = ("observed_at", "platform", "target", "metric", "value", "provenance", "session_id")


@main.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(["csv"]), default="csv", show_default=True)
@click.option("--since", help="Start (inclusive): ISO 8601 time or a duration ago, e.g. 2h.")
@click.option("--until", help="End (exclusive): ISO 8601 time or a duration ago.")
@click.option("--target", "target_names", multiple=True, help="Only this target (repeatable).")
@click.option("--metric", "metrics", multiple=True, help="Only this metric (repeatable).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option(
    "--gaps",
    "gaps",
    is_flag=True,
    help="Export the known gaps (windows without samples, from `backfill gaps`) instead of samples.",
)
def export(
    config_path: str,
    fmt: str,
    since: str | None,
    until: str | None,
    target_names: Sequence[str],
    metrics: Sequence[str],
    output: Path | None,
    gaps: bool,
) -> None:
    """Export stored samples, oldest first (observed_at in ISO 8601 UTC). Nothing is written unless the
    database answers, and -o FILE appears only once complete."""
    config = load_config_or_exit(config_path)
    start, end = when(since), when(until)
    what = "gaps" if gaps else "samples"
    try:
        with database_errors(config), _export_stream(output) as stream:
            if gaps:
                count = asyncio.run(_export_gaps(config, stream, start, end, target_names))
            else:
                count = asyncio.run(_export_csv(config, stream, start, end, target_names, metrics))
    except BrokenPipeError:
        # `export | head` has what it wanted. Python would complain again flushing stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(1)
    click.echo(f"exported {count} {what}", err=True)


@contextmanager
def _export_stream(path: Path | None) -> Iterator[TextIO]:
    """Standard output, or a file written beside `path` and renamed over it on success only."""
    if path is None:
        yield sys.stdout
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        stream = partial.open("x", newline="", encoding="utf-8")
    except OSError as exc:
        raise SetupFailed(f"--output {path}: {os_problem(exc, partial)}") from None
    try:
        with stream:
            yield stream
        try:
            partial.replace(path)
        except OSError as exc:
            raise SetupFailed(f"--output {path}: {os_problem(exc, path)}") from None
    finally:
        partial.unlink(missing_ok=True)


def _csv_row(row: ExportRow) -> tuple[str, ...]:
    return (
        iso_utc(row.observed_at) or "",
        row.platform,
        row.target,
        row.metric,
        number(row.value),
        row.provenance,
        row.session_id or "",
    )


async def _export_csv(config: Config, stream: TextIO, since, until, target_names, metrics) -> int:  # type: ignore[no-untyped-def]
    from collector.store import Store

    store = Store(config.collector.database_url)
    try:
        query = store.export_rows(since=since, until=until, targets=target_names, metrics=metrics)
        async with contextlib.aclosing(query) as rows:
            # The first row (or the end) proves the database answers; only then does the header go out.
            first = await anext(rows, None)
            writer = csv.writer(stream, lineterminator="\n")
            writer.writerow(EXPORT_HEADER)
            if first is None:
                return 0
            writer.writerow(_csv_row(first))
            count = 1
            async for row in rows:
                writer.writerow(_csv_row(row))
                count += 1
            return count
    finally:
        await store.close()


GAPS_HEADER = ("started_at", "ended_at", "platform", "target", "seconds", "status", "detail")


async def _export_gaps(config: Config, stream: TextIO, since, until, target_names) -> int:  # type: ignore[no-untyped-def]
    from collector.jobs import JobBook
    from collector.store import Store

    store = Store(config.collector.database_url)
    try:
        found = await JobBook(store).gaps(since=since, until=until, targets=target_names)
    finally:
        await store.close()
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(GAPS_HEADER)
    for gap in found:
        writer.writerow(
            (iso_utc(gap.started_at), iso_utc(gap.ended_at), gap.platform, gap.target, f"{gap.seconds:.0f}",
             gap.status, gap.detail or "")
        )  # fmt: skip
    return len(found)


@main.command()
@config_option
@click.option("--campaign", required=True, help="Campaign name, as targets' `campaign` gives it.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(REPORT_FORMATS),
    default="text",
    show_default=True,
    help="text: terminal summary; html: one file with charts; csv: one row per session.",
)
@click.option("--since", help="Start (inclusive), overriding the campaign's: ISO 8601 or a duration ago.")
@click.option("--until", help="End (exclusive), overriding the campaign's: ISO 8601 or a duration ago.")
@click.option(
    "--lang",
    type=click.Choice(REPORT_LANGS),
    default="vi",
    show_default=True,
    help="Labels and number format: vi (1,2 Tr; 300.000.000 ₫) or en.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@click.option(
    "--charts",
    "charts_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write the charts as PNG files into this directory.",
)
def report(
    config_path: str,
    campaign: str,
    fmt: str,
    since: str | None,
    until: str | None,
    lang: str,
    output: Path | None,
    charts_dir: Path | None,
) -> None:
    """A campaign's numbers: live views, peak viewers, orders and revenue by provenance, hashtags.

    Each broadcast counts once, however many targets reported on it. Definitions: README, "Campaign
    reports and the scoreboard".
    """
    from collector.campaign import ReportError
    from collector.report import read_rollup, render, write_charts
    from collector.store import create_engine

    config = load_config_or_exit(config_path)
    start, end = when(since), when(until)

    async def load():  # type: ignore[no-untyped-def]
        engine = create_engine(config.collector.database_url)
        try:
            charts = fmt == "html" or charts_dir is not None
            return await read_rollup(engine, config, campaign, since=start, until=end, series=charts)
        finally:
            await engine.dispose()

    with database_errors(config):
        try:
            rollup = asyncio.run(load())
        except ReportError as exc:
            raise click.ClickException(str(exc)) from None
    text = render(rollup, fmt, lang)
    with _export_stream(output) as stream:
        stream.write(text)
    if output:
        click.echo(f"wrote {output}", err=True)
    if charts_dir:
        for path in write_charts(rollup, lang, charts_dir):
            click.echo(f"wrote {path}", err=True)


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
    "modes: 429 503 500 slow reset empty truncate captcha login layout redirect_foreign redirect_private; "
    "real answers: unsigned webcast_login room_finished webcast_refused antibot; "
    "marketplace gates: punish_redirect rgv587 slider).",
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
    failed: list[OSError] = []

    def on_ready(url: str) -> None:
        sim_url.append(url)
        ready.set()

    def simulate() -> None:
        try:
            asyncio.run(serve(host, int(port), seed=seed, ready=on_ready))
        except OSError as exc:
            failed.append(exc)
            ready.set()

    threading.Thread(target=simulate, daemon=True).start()
    if not ready.wait(15) or failed:
        why = listen_problem(simulator_listen, failed[0]) if failed else "it did not start within 15s"
        raise SetupFailed(f"--simulator-listen: {why}")
    text = files("collector").joinpath("demo.toml").read_text(encoding="utf-8")
    path = _write_demo_config(text.replace("{simulator}", sim_url[0]), demo_env())
    config = load_config_or_exit(str(path))
    click.echo(f"simulator:  {sim_url[0]}  (ground truth at {sim_url[0]}/_sim/truth)")
    click.echo(f"config:     {path}   (-c {path} for other commands; `collector reload` re-reads it)")
    click.echo(f"database:   {config.collector.database_url}")
    click.echo(f"metrics:    http://{config.collector.metrics_listen}/metrics")
    for name in config.campaigns:
        click.echo(f"board:      http://{config.collector.metrics_listen}/board/{name}")
    click.echo(f"targets:    {', '.join(t.name for t in config.targets)}")
    click.echo(f"export:     .venv/bin/collector export -c {path}")
    click.echo(f"backfill:   .venv/bin/collector backfill history -c {path}   (also: reprocess, gaps, list)")
    for name in config.campaigns:
        click.echo(
            f"report:     .venv/bin/collector report -c {path} --campaign {name} --format html -o report.html"
        )
    click.echo("Ctrl-C to stop.")
    _run_service(config)


main.add_command(backfill)


DEMO_DIR = Path("data")


def _write_demo_config(text: str, secrets: dict[str, str]) -> Path:
    """The demo's configuration as a file beside its database, so every other command (and a reload)
    can use it. Its made-up credentials go into files there too, named by `*_file` as real ones are."""
    folder = DEMO_DIR / "demo-secrets"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, value in secrets.items():
            secret = folder / name
            secret.write_text(value, encoding="utf-8")
            secret.chmod(0o600)
            text = re.sub(rf'(\w+)_env = "{name}"', rf'\1_file = "{secret}"', text)
        path = DEMO_DIR / "demo.toml"
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SetupFailed(f"demo: cannot write {DEMO_DIR}/: {os_problem(exc, DEMO_DIR)}") from None
    return path
