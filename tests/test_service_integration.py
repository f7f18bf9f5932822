"""The whole path, for real: simulator -> collector (once / run) -> SQLite or PostgreSQL -> /metrics -> export."""

from __future__ import annotations

import csv
import io
import json
import re
import signal
import sqlite3
from pathlib import Path

import pytest

from collector.cli import EXPORT_HEADER
from tests.harness import (
    free_port,
    http_get,
    metric_value,
    run_cli,
    service,
    simulator,
    truth,
    wait_for,
    write_config,
)

# Starts the simulator and the CLI as subprocesses, against SQLite and PostgreSQL.
pytestmark = pytest.mark.integration

# 650 s into the demo scenario: shop_vn is live, nongsanlaichau_official is in its paused window.
FROZEN_AT = "650"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def export_rows(config: Path, *args: str) -> list[dict[str, str]]:
    result = run_cli("export", "--config", str(config), "--format", "csv", *args)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == ",".join(EXPORT_HEADER)
    return list(csv.DictReader(io.StringIO(result.stdout)))


def latest(rows: list[dict[str, str]], target: str, metric: str) -> dict[str, str]:
    matching = [r for r in rows if r["target"] == target and r["metric"] == metric]
    assert matching, f"no {metric} samples for {target}"
    return matching[-1]


def test_once_stores_exactly_what_the_simulator_served(database_url: str, tmp_path: Path) -> None:
    with simulator("--freeze-at", FROZEN_AT) as sim:
        config = write_config(
            tmp_path / "c.toml", database_url=database_url, sim_url=sim, metrics_port=free_port()
        )
        result = run_cli("once", "--config", str(config), "--format", "json")
        assert result.returncode == 0, result.stderr
        served = truth(sim)["tiktok"]

    polled = {r["target"]: r for r in json.loads(result.stdout)["records"]}
    assert {name: r["outcome"] for name, r in polled.items()} == {
        "lai-chau-shop": "ok",
        "nongsan-lai-chau": "ok",
        "offline-shop": "not_live",
        "age-restricted-room": "login_wall",
        "ghost": "not_found",
    }
    shop_viewers = [s for s in polled["lai-chau-shop"]["samples"] if s["metric"] == "viewers"]
    assert [(s["value"], s["provenance"]) for s in shop_viewers] == [
        (served["shop_vn"]["viewers"], "observed")
    ]
    assert polled["lai-chau-shop"]["session_key"] == served["shop_vn"]["room_id"]
    assert ISO_UTC.match(polled["ghost"]["observed_at"]) and polled["ghost"]["samples"] == []

    rows = export_rows(config)
    shop = served["shop_vn"]
    for metric, key in [("viewers", "viewers"), ("views", "views"), ("likes", "likes"), ("shares", "shares")]:
        row = latest(rows, "lai-chau-shop", metric)
        assert float(row["value"]) == shop[key], metric
        assert row["session_id"] == shop["room_id"]
        assert row["provenance"] == "observed"
        assert row["platform"] == "tiktok"
        assert ISO_UTC.match(row["observed_at"])
    assert float(latest(rows, "lai-chau-shop", "followers")["value"]) == shop["followers"]
    assert latest(rows, "lai-chau-shop", "live_status")["value"] == "2"
    assert latest(rows, "nongsan-lai-chau", "live_status")["value"] == "3"  # paused
    assert (
        float(latest(rows, "nongsan-lai-chau", "viewers")["value"])
        == served["nongsanlaichau_official"]["viewers"]
    )
    assert {r["metric"] for r in rows if r["target"] == "offline-shop"} == {"live_status", "followers"}
    assert not [r for r in rows if r["target"] in ("age-restricted-room", "ghost")]

    status = run_cli("status", "--config", str(config), "--format", "json")
    assert status.returncode == 0, status.stderr
    ghost = next(t for t in json.loads(status.stdout)["targets"] if t["name"] == "ghost")
    assert (ghost["last_outcome"], ghost["last_success_at"]) == ("not_found", None)
    assert ghost["detail"] == "TikTok user not found"
    assert ISO_UTC.match(ghost["last_outcome_at"]) and ISO_UTC.match(ghost["next_due_at"])

    only_views = export_rows(config, "--target", "lai-chau-shop", "--metric", "views")
    assert [(r["target"], r["metric"]) for r in only_views] == [("lai-chau-shop", "views")]
    assert export_rows(config, "--since", "2h", "--until", "1h") == []


def test_run_serves_metrics_and_stops_cleanly_on_sigterm(database_url: str, tmp_path: Path) -> None:
    port = free_port()
    with simulator("--freeze-at", FROZEN_AT) as sim:
        config = write_config(tmp_path / "c.toml", database_url=database_url, sim_url=sim, metrics_port=port)
        with service(config) as proc:

            def scrape() -> str | None:
                status, body = http_get(f"http://127.0.0.1:{port}/metrics")
                # Every outcome series exists from the start at 0: wait until these have happened.
                done = metric_value(body, "livestream_viewers", target="lai-chau-shop") is not None and all(
                    (metric_value(body, "collector_polls_total", outcome=o) or 0) >= 1
                    for o in ("not_found", "login_wall")
                )
                return body if status == 200 and done else None

            body = wait_for(lambda: _quiet(scrape), timeout=30)
            assert body, "no viewers series on /metrics within 30 s"
            served = truth(sim)["tiktok"]["shop_vn"]
            labels = {
                "target": "lai-chau-shop",
                "platform": "tiktok",
                "campaign": "mega-livestream-lai-chau-2025",
            }
            assert metric_value(body, "livestream_viewers", **labels) == served["viewers"]
            assert metric_value(body, "livestream_views", **labels) == served["views"]
            assert metric_value(body, "collector_polls_total", outcome="login_wall") >= 1
            assert metric_value(body, "collector_last_success_timestamp_seconds", target="lai-chau-shop") > 0
            assert "collector_poll_duration_seconds_bucket" in body
            assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, "ok\n")

            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, output
            assert "collector stopped cleanly" in output

    rows = export_rows(config, "--target", "lai-chau-shop", "--metric", "viewers")
    assert rows and all(float(r["value"]) == served["viewers"] for r in rows)


def test_a_new_room_id_starts_a_new_live_session(tmp_path: Path) -> None:
    """At 200x speed shop_vn's room ends ~10 s in and a new one starts ~1 s later."""
    db = tmp_path / "collector.db"
    with simulator("--speed", "200") as sim:
        config = write_config(
            tmp_path / "c.toml",
            database_url=f"sqlite+aiosqlite:///{db}",
            sim_url=sim,
            metrics_port=free_port(),
        )
        with service(config) as proc:
            second_room = wait_for(lambda: _two_sessions(db), timeout=40, interval=1)
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=30)
            assert proc.returncode == 0, output
    assert second_room, "no second live session recorded"
    with sqlite3.connect(db) as conn:
        sessions = conn.execute(
            "SELECT s.session_key, s.last_status, s.ended_at, s.peak_viewers FROM live_sessions s "
            "JOIN targets t ON t.id = s.target_id WHERE t.name = 'lai-chau-shop' ORDER BY s.first_seen_at"
        ).fetchall()
    first, second = sessions[0], sessions[-1]
    assert first[0] != second[0]
    assert first[1] == "ended" and first[2] is not None and first[3] > 0
    rows = export_rows(config, "--target", "lai-chau-shop", "--metric", "views")
    assert {r["session_id"] for r in rows} >= {first[0], second[0]}


def _two_sessions(db: Path) -> bool:
    try:
        with sqlite3.connect(db) as conn:
            count = conn.execute(
                "SELECT count(*) FROM live_sessions s JOIN targets t ON t.id = s.target_id "
                "WHERE t.name = 'lai-chau-shop' AND s.last_status = 'live'"
            ).fetchone()[0]
            ended = conn.execute("SELECT count(*) FROM live_sessions WHERE last_status = 'ended'").fetchone()[
                0
            ]
    except sqlite3.Error:
        return False
    return count >= 1 and ended >= 1


def _quiet(fn):  # type: ignore[no-untyped-def]
    try:
        return fn()
    except OSError:
        return None
