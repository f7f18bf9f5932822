"""What every `collector` command shares: the config option, loading it, one-line errors, output formats.

Its own module so command groups in other modules (`collector backfill`) use it without importing the
command line's entry point.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
import orjson
from sqlalchemy.exc import SQLAlchemyError

from collector.adapters import registered_adapters
from collector.config import Config, ConfigError, load_config, parse_duration
from collector.describe import redacted_database_url
from collector.listing import Listing, render
from collector.startup import StartupError

CONFIG_HELP = "Configuration file (env COLLECTOR_CONFIG)."


class SetupFailed(click.ClickException):
    """The machine refuses a setting (a port taken, a database down): one line, exit 2 like a config error."""

    exit_code = 2


@contextmanager
def startup_errors() -> Iterator[None]:
    try:
        yield
    except StartupError as exc:
        raise SetupFailed(str(exc)) from None


@contextmanager
def database_errors(config: Config) -> Iterator[None]:
    """A database that is down or unmigrated is an operator's problem to fix, not a traceback."""
    with startup_errors():
        try:
            yield
        except BrokenPipeError:
            raise  # the reader of our output went away (`| head`): not the database's doing
        except (SQLAlchemyError, OSError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else ""
            url = redacted_database_url(config.collector.database_url)
            raise SetupFailed(f"collector.database_url: {url}: {type(exc).__name__}: {first[:300]}") from None


def load_config_or_exit(path: str) -> Config:
    try:
        return load_config(path, adapters=registered_adapters())
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"config error: {problem}", err=True)
        sys.exit(2)


config_option = click.option(
    "--config",
    "-c",
    "config_path",
    envvar="COLLECTOR_CONFIG",
    default="config.toml",
    show_default=True,
    help=CONFIG_HELP,
)
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="text for people (columns when they fit, else one block per target); json for scripts "
    "(fixed keys, times in ISO 8601 UTC).",
)


def show(fmt: str, listing: Listing, document: dict[str, Any]) -> None:
    if fmt == "json":
        click.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2).decode())
        return
    width = shutil.get_terminal_size().columns  # COLUMNS when set; 80 in a pipe
    for line in render(listing, width, wrap=sys.stdout.isatty()):
        click.echo(line)


def when(text: str | None) -> datetime | None:
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
