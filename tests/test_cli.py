"""The command line as an operator meets it: layouts at 80 columns and in a pipe, JSON for scripts, and
start-up problems from the environment as one line naming the setting, exit 2, no traceback."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import socket
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from collector.adapters import registered_adapters
from collector.api import PollRecord
from collector.cli import EXPORT_HEADER, main
from collector.config import load_config
from collector.listing import Listing, render
from collector.outcomes import Outcome
from collector.spool import Spool
from collector.store import Store
from collector.views import ago, span
from schemas.types import Metric, Provenance, Sample
from tests.harness import CLI, free_port, run_cli

ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LONG_DETAIL = (
    "HttpError: HTTP 503 from https://www.tiktok.com/api-live/user/room/?uniqueId=shop_vn&sourceType=54 "
    "after 3 tries; the platform answered with its maintenance page"
)
TARGETS = """
[[targets]]
name = "ocop-lai-chau"
platform = "tiktok"
kind = "live"
account = "ocoplaichau"
campaign = "da-nang-digital-trade-week-2025"

[[targets]]
name = "tag-nongsanlaichau"
platform = "tiktok"
kind = "hashtag"
tag = "nongsanlaichau"
interval = "10m"

[[targets]]
name = "facebook-laichau-ocop"
platform = "facebook"
kind = "live"
page = "laichau.ocop"
enabled = false
"""
ENV = {"COLLECTOR_DATABASE_URL": None, "COLLECTOR_CONFIG": None}


def write_config(tmp_path: Path, *, collector: str = "", targets: str = TARGETS) -> Path:
    settings = {
        "database_url": f'"sqlite+aiosqlite:///{tmp_path / "c.db"}"',
        "spool_dir": f'"{tmp_path / "spool"}"',
        "metrics_listen": f'"127.0.0.1:{free_port()}"',
    }
    for line in collector.strip().splitlines():
        key, _, value = line.partition("=")
        settings[key.strip()] = value.strip()
    body = "\n".join(f"{k} = {v}" for k, v in settings.items())
    path = tmp_path / "c.toml"
    path.write_text(f"[collector]\n{body}\n{targets}", encoding="utf-8")
    return path


def _sample(metric: Metric, value: float, at: datetime) -> Sample:
    return Sample("ocop-lai-chau", "tiktok", "live", metric, value, at, Provenance.OBSERVED, "room-1")


def store_polls(path: Path, records: list[PollRecord]) -> None:
    config = load_config(str(path), adapters=registered_adapters(), env={})

    async def write() -> None:
        store = Store(config.collector.database_url, config.active_targets())
        try:
            await store.prepare()
            await store.write(records)
        finally:
            await store.close()

    asyncio.run(write())


@pytest.fixture
def polled(tmp_path: Path) -> Iterator[Path]:
    """A configuration whose SQLite database holds one good poll and one failed poll."""
    path = write_config(tmp_path)
    now = datetime.now(UTC)
    store_polls(
        path,
        [
            PollRecord(
                "ocop-lai-chau",
                now - timedelta(seconds=5),
                Outcome.OK,
                [_sample(Metric.VIEWERS, 1234, now - timedelta(seconds=5))],
                next_due_at=now + timedelta(seconds=25),
            ),
            PollRecord(
                "tag-nongsanlaichau",
                now - timedelta(seconds=90),
                Outcome.HTTP_ERROR,
                next_due_at=now + timedelta(minutes=8),
                detail=LONG_DETAIL,
            ),
        ],
    )
    yield path


def invoke(*args: str, columns: int = 80):  # type: ignore[no-untyped-def]
    result = CliRunner().invoke(main, list(args), env={**ENV, "COLUMNS": str(columns)})
    assert result.exit_code == 0, result.output
    return result


# --- layouts ------------------------------------------------------------------------------------------


def assert_no_lone_detail_word(lines: list[str], details: list[str]) -> None:
    for line in lines:
        token = line.strip()
        for detail in details:
            if " " not in token and token in detail.split() and token != detail:
                raise AssertionError(f"a lone word of {detail!r} on its own line: {line!r}")


def test_status_at_80_columns_in_a_pipe_keeps_every_detail_whole_on_one_line(polled: Path) -> None:
    lines = invoke("status", "-c", str(polled)).output.splitlines()
    assert not [line for line in lines if set(line) & set("│┃━─┏┗")], "box art in a pipe"
    assert f"    {LONG_DETAIL}" in lines
    assert_no_lone_detail_word(lines, [LONG_DETAIL])
    # Everything but the detail line fits 80 columns, and every target is there with its outcome.
    assert max(len(line) for line in lines if LONG_DETAIL not in line) <= 80
    text = "\n".join(lines)
    assert re.search(
        r"^ocop-lai-chau\n\s+platform: tiktok\s+kind: live\s+last outcome: ok\s+at: \d+s ago", text, re.M
    )
    assert re.search(r"^tag-nongsanlaichau\n.*last outcome: http_error\s+at: 1m3\ds ago", text, re.M)
    assert re.search(r"^facebook-laichau-ocop\n.*last outcome: disabled", text, re.M)
    assert re.search(r"next due: in (8m|7m5\ds)$", text, re.M)


def test_status_on_a_wide_terminal_is_one_row_per_target_with_the_detail_below(polled: Path) -> None:
    output = invoke("status", "-c", str(polled), columns=160).output
    table, services = output.split("\n\n")
    assert services == "no collector service is running (no heartbeat in the last 15s)\n"
    lines = table.splitlines()
    assert lines[0].split() == [
        "TARGET",
        "PLATFORM",
        "KIND",
        "LAST",
        "OUTCOME",
        "AT",
        "LAST",
        "SUCCESS",
        "NEXT",
        "DUE",
    ]
    rows = {line.split()[0]: line for line in lines[1:] if not line.startswith(" ")}
    assert rows["tag-nongsanlaichau"].split()[:4] == ["tag-nongsanlaichau", "tiktok", "hashtag", "http_error"]
    assert lines[lines.index(rows["tag-nongsanlaichau"]) + 1] == f"    {LONG_DETAIL}"
    assert rows["facebook-laichau-ocop"].split()[3] == "disabled"
    # The columns line up: each header starts where its cells do.
    start = lines[0].index("LAST OUTCOME")
    assert rows["ocop-lai-chau"][start:].startswith("ok ")


def test_fleet_view_without_a_fleet_says_so_and_lists_every_target_as_unheld(polled: Path) -> None:
    lines = invoke("fleet", "-c", str(polled)).output.splitlines()
    assert lines[0].split() == ["REPLICA", "STATE", "STARTED", "HEARTBEAT", "TARGETS"]
    assert "0 of 2 enabled targets held by 0 live replicas (lease 30s)" in lines
    assert "not held by any replica: ocop-lai-chau, tag-nongsanlaichau" in lines
    assert lines[-1].startswith("fleet mode is off in this configuration")
    document = json.loads(invoke("fleet", "-c", str(polled), "--format", "json").output)
    assert document == {
        "lease_seconds": 30.0,
        "replicas": [],
        "targets_enabled": 2,
        "targets_held": 0,
        "unheld": ["ocop-lai-chau", "tag-nongsanlaichau"],
    }


def test_status_json_has_fixed_keys_and_iso_utc_times(polled: Path) -> None:
    document = json.loads(invoke("status", "-c", str(polled), "--format", "json").output)
    by_name = {t["name"]: t for t in document["targets"]}
    assert set(by_name) == {"ocop-lai-chau", "tag-nongsanlaichau", "facebook-laichau-ocop"}
    keys = {"name", "platform", "kind", "enabled", "last_outcome", "last_outcome_at", "last_success_at"}
    keys |= {"next_due_at", "detail", "credentials_expire_at", "held_by", "held_since"}
    assert all(set(t) == keys for t in document["targets"])
    assert all(t["held_by"] is None for t in document["targets"])  # one process, no leases
    assert all(t["credentials_expire_at"] is None for t in document["targets"])  # no API tokens here
    shop, tag, fb = by_name["ocop-lai-chau"], by_name["tag-nongsanlaichau"], by_name["facebook-laichau-ocop"]
    assert (shop["last_outcome"], shop["detail"]) == ("ok", None)
    for when in (shop["last_outcome_at"], shop["last_success_at"], shop["next_due_at"], tag["next_due_at"]):
        assert ISO_UTC.match(when), when
    assert shop["last_outcome_at"] == shop["last_success_at"]
    assert (tag["last_outcome"], tag["last_success_at"], tag["detail"]) == ("http_error", None, LONG_DETAIL)
    assert (fb["enabled"], fb["last_outcome"], fb["last_outcome_at"]) == (False, None, None)


def test_targets_list_fits_80_columns_and_json_lists_every_field(tmp_path: Path) -> None:
    path = write_config(tmp_path)
    lines = invoke("targets", "list", "-c", str(path)).output.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0].split() == ["NAME", "PLATFORM", "KIND", "INTERVAL", "ENABLED"]
    assert lines[1].split() == ["ocop-lai-chau", "tiktok", "live", "30s", "yes"]
    assert lines[2].split() == ["account=ocoplaichau", "campaign=da-nang-digital-trade-week-2025"]
    assert lines[5].split() == ["facebook-laichau-ocop", "facebook", "live", "30s", "no"]

    document = json.loads(invoke("targets", "list", "-c", str(path), "--format", "json").output)
    assert document["targets"][1] == {
        "name": "tag-nongsanlaichau",
        "platform": "tiktok",
        "kind": "hashtag",
        "fields": {"tag": "nongsanlaichau"},
        "secrets": {},
        "interval_seconds": 600.0,
        "campaign": None,
        "enabled": True,
    }
    assert [t["enabled"] for t in document["targets"]] == [True, True, False]


def test_a_narrow_listing_becomes_blocks_whose_pairs_are_never_split() -> None:
    listing = Listing(("target", "platform", "kind", "last outcome", "next due"))
    listing.add(
        "danang-digital-trade-week-2025", "tiktok", "live", "network_error", "in 30s", details=["x y"]
    )
    lines = render(listing, 40, wrap=False)
    assert lines == [
        "danang-digital-trade-week-2025",
        "    platform: tiktok  kind: live",
        "    last outcome: network_error",
        "    next due: in 30s",
        "    x y",
    ]
    assert render(listing, 100, wrap=False)[1].split() == [
        "danang-digital-trade-week-2025",
        "tiktok",
        "live",
        "network_error",
        "in",
        "30s",
    ]


def test_on_a_terminal_details_wrap_at_spaces_and_urls_stay_whole() -> None:
    listing = Listing(("target", "outcome"))
    listing.add("shop", "http_error", details=[LONG_DETAIL])
    lines = render(listing, 60, wrap=True)
    detail_lines = lines[2:]
    url = next(word for word in LONG_DETAIL.split() if word.startswith("https://"))
    assert f"    {url}" in detail_lines  # longer than the width, yet whole
    assert all(len(line) <= 60 for line in detail_lines if url not in line)
    assert " ".join(line.strip() for line in detail_lines) == LONG_DETAIL


def test_relative_times_read_at_a_glance() -> None:
    now = datetime(2025, 9, 9, 13, 0, tzinfo=UTC)
    assert [span(s) for s in (5, 59, 60, 404, 3600, 7500, 86400 + 4 * 3600)] == [
        "5s",
        "59s",
        "1m",
        "6m44s",
        "1h",
        "2h05m",
        "1d04h",
    ]
    assert ago(now - timedelta(seconds=90), now) == "1m30s ago"
    assert ago(now + timedelta(seconds=30), now) == "in 30s"
    assert ago(None, now) == "-"


# --- start-up problems ---------------------------------------------------------------------------------


def assert_one_line_error(result, expected: str) -> None:  # type: ignore[no-untyped-def]
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert re.fullmatch(expected, errors[0]), errors[0]


def test_a_metrics_port_in_use_is_one_line_naming_metrics_listen(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = write_config(tmp_path, collector=f'metrics_listen = "127.0.0.1:{port}"')
        result = run_cli("--log-level", "warning", "run", "-c", str(config), timeout=60)
    assert_one_line_error(
        result,
        rf"Error: collector\.metrics_listen: cannot listen on 127\.0\.0\.1:{port}: the port is already in use "
        r"\(a demo or another collector still running\?\)",
    )
    assert result.stderr.strip() == result.stderr.strip().splitlines()[-1]  # nothing else was said


def test_a_spool_dir_under_a_regular_file_is_one_line_naming_spool_dir(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("not a directory")
    spool = tmp_path / "afile" / "spool"
    config = write_config(tmp_path, collector=f'spool_dir = "{spool}"')
    result = run_cli("--log-level", "warning", "run", "-c", str(config), timeout=60)
    assert_one_line_error(
        result, rf"Error: collector\.spool_dir: {re.escape(str(spool))} cannot be used: Not a directory"
    )


def test_a_spool_held_by_another_process_is_one_line_naming_spool_dir(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    held = Spool(tmp_path / "spool", max_bytes=1 << 20)  # a real flock, as a running collector holds it
    try:
        result = run_cli("--log-level", "warning", "run", "-c", str(config), timeout=60)
    finally:
        held.close()
    assert_one_line_error(
        result,
        rf"Error: collector\.spool_dir: spool {re.escape(str(tmp_path / 'spool'))} is in use by another process "
        r"\(another collector still running\?\)",
    )


@pytest.mark.parametrize("command", [["run"], ["once"], ["db", "upgrade"]])
def test_a_sqlite_directory_that_cannot_be_created_is_one_line_naming_database_url(
    tmp_path: Path, command: list[str]
) -> None:
    (tmp_path / "afile").write_text("not a directory")
    database = tmp_path / "afile" / "db" / "c.db"
    config = write_config(tmp_path, collector=f'database_url = "sqlite+aiosqlite:///{database}"')
    result = run_cli("--log-level", "warning", *command, "-c", str(config), timeout=60)
    assert_one_line_error(
        result,
        rf"Error: collector\.database_url: the SQLite directory {re.escape(str(database.parent))} cannot be "
        r"created: Not a directory",
    )


def test_the_demo_with_its_simulator_port_taken_says_so_at_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--simulator-listen", f"127.0.0.1:{port}", timeout=60)
    assert_one_line_error(
        result,
        rf"Error: --simulator-listen: cannot listen on 127\.0\.0\.1:{port}: the port is already in use.*",
    )


@pytest.fixture
def unreachable_postgres(tmp_path: Path) -> Path:
    """A PostgreSQL URL on a loopback port nobody listens on (connection refused at once)."""
    url = f"postgresql+asyncpg://u:hunter2@127.0.0.1:{free_port()}/x"
    return write_config(tmp_path, collector=f'database_url = "{url}"')


@pytest.mark.parametrize(
    "command", [["status"], ["status", "--format", "json"], ["export"], ["once"], ["db", "upgrade"]]
)
def test_an_unreachable_database_is_one_line_naming_database_url(
    unreachable_postgres: Path, command: list[str]
) -> None:
    result = run_cli("--log-level", "warning", *command, "-c", str(unreachable_postgres), timeout=60)
    assert_one_line_error(
        result,
        r"Error: collector\.database_url: postgresql\+asyncpg://u:\*\*\*@127\.0\.0\.1:\d+/x: "
        r"ConnectionRefusedError: .*",
    )
    assert "hunter2" not in result.stderr + result.stdout
    assert result.stdout == ""  # not even a CSV header or an empty JSON document


def test_export_to_a_file_against_an_unreachable_database_leaves_no_file(
    unreachable_postgres: Path, tmp_path: Path
) -> None:
    fresh, existing = tmp_path / "new.csv", tmp_path / "yesterday.csv"
    existing.write_text("observed_at,platform\nkept\n")
    for output in (fresh, existing):
        result = run_cli("export", "-c", str(unreachable_postgres), "-o", str(output), timeout=60)
        assert result.returncode == 2, result.stderr
    assert not fresh.exists()
    assert existing.read_text() == "observed_at,platform\nkept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.toml", "yesterday.csv"]  # no partial file


def test_export_to_a_file_writes_the_same_rows_as_to_stdout(polled: Path, tmp_path: Path) -> None:
    output = tmp_path / "out.csv"
    to_file = CliRunner().invoke(main, ["export", "-c", str(polled), "-o", str(output)], env=ENV)
    assert to_file.exit_code == 0, to_file.output
    to_stdout = CliRunner().invoke(main, ["export", "-c", str(polled)], env=ENV)
    assert output.read_text() == to_stdout.stdout
    rows = list(csv.reader(io.StringIO(output.read_text())))
    assert rows[0] == list(EXPORT_HEADER)
    assert [r[2:6] for r in rows[1:]] == [["ocop-lai-chau", "viewers", "1234", "observed"]]
    assert not list(tmp_path.glob(".*.part"))


def test_an_output_path_that_cannot_be_written_is_one_line_naming_output(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    result = run_cli("export", "-c", str(config), "-o", str(tmp_path / "missing" / "x.csv"), timeout=60)
    assert_one_line_error(
        result,
        rf"Error: --output {re.escape(str(tmp_path / 'missing' / 'x.csv'))}: No such file or directory",
    )


def test_export_into_a_pipe_its_reader_closed_is_no_database_error(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    start = datetime.now(UTC) - timedelta(hours=1)
    at = [start + timedelta(seconds=i) for i in range(3000)]  # ~200 kB of CSV: more than a pipe holds
    store_polls(
        config, [PollRecord("ocop-lai-chau", t, Outcome.OK, [_sample(Metric.VIEWERS, 1, t)]) for t in at]
    )
    proc = subprocess.Popen(
        [*CLI, "export", "-c", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().decode().startswith("observed_at,")
    proc.stdout.close()  # as `| head -1` does
    stderr = proc.stderr.read().decode()
    assert proc.wait(60) == 1
    assert stderr == "", stderr
