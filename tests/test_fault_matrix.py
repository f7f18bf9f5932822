"""The fault matrix: the real service against the simulator's fault modes, a stopped PostgreSQL, SIGTERM
and kill -9. Each test asserts the classification and metric, the politeness rules, and that every
sample the simulator served is stored exactly once.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.harness import (
    free_port,
    http_get,
    metric_value,
    scrape,
    service,
    simulator,
    wait_for,
    write_config,
)

# Starts the simulator and the service as subprocesses, against SQLite and PostgreSQL.
pytestmark = pytest.mark.integration

ROOM_INFO = "/webcast.tiktok.com/webcast/room/info/"
TWO_TARGETS = """
[[targets]]
name = "lai-chau-shop"
platform = "tiktok"
kind = "live"
account = "shop_vn"

[[targets]]
name = "nongsan-lai-chau"
platform = "tiktok"
kind = "live"
account = "nongsanlaichau_official"
"""


def post(url: str, payload: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return json.loads(resp.read())


def set_faults(sim: str, *rules: dict[str, Any]) -> None:
    post(f"{sim}/_sim/faults", list(rules))


def request_log(sim: str) -> list[dict[str, Any]]:
    return json.loads(http_get(f"{sim}/_sim/requests")[1])["requests"]


def config_for(tmp_path: Path, sim: str, database_url: str, port: int, platform_extra: str = "") -> Path:
    path = write_config(
        tmp_path / "c.toml", database_url=database_url, sim_url=sim, metrics_port=port, targets=""
    )
    # Merge the tuning keys into the harness's tables rather than repeating them.
    body = path.read_text()
    body = body.replace('timeout = "3s"', 'timeout = "1s"\nretries = 1\nretry_backoff = "100ms"')
    # The loss checks count stored samples against pages served by a frozen simulator, whose values
    # never change: store on change would rightly leave most out, so it is off here.
    body = body.replace(
        'shutdown_grace = "5s"', 'shutdown_grace = "5s"\nmax_backoff = "3s"\nkeep_unchanged_every = "off"'
    )
    body = body.replace("requests_per_second = 50.0", "requests_per_second = 50.0\n" + platform_extra)
    path.write_text(body + TWO_TARGETS)
    return path


def stop(proc) -> str:  # type: ignore[no-untyped-def]
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    return output


async def pg_rows(database_url: str, target: str) -> list[str]:
    import asyncpg

    from tests.postgres import plain_dsn

    conn = await asyncpg.connect(plain_dsn(database_url))
    try:
        rows = await conn.fetch(
            "SELECT s.observed_at FROM samples s JOIN targets t ON t.id = s.target_id "
            "WHERE t.name = $1 AND s.metric = 'viewers'",
            target,
        )
    finally:
        await conn.close()
    return [str(r[0]) for r in rows]


def served_room_infos(sim: str, room_id: str, *, before: float | None = None) -> int:
    return sum(
        1
        for e in request_log(sim)
        if e["path"] == ROOM_INFO
        and e["query"].get("room_id") == room_id
        and e["status"] == 200
        and (before is None or e.get("done", 0) < before)
    )


@contextmanager
def spooling_service(config: Path, port: int, postgres_server):  # type: ignore[no-untyped-def]
    """`collector run` that has written to PostgreSQL, then lost it: what it fetches now is spooled."""
    with service(config) as proc:
        assert wait_for(lambda: metric_value(scrape(port), "collector_samples_written_total"), 30)
        postgres_server.stop()
        assert wait_for(lambda: (metric_value(scrape(port), "collector_spool_records") or 0) >= 4, 30)
        yield proc


def shop_room(sim: str) -> str:
    return json.loads(http_get(f"{sim}/_sim/truth")[1])["tiktok"]["shop_vn"]["room_id"]


@pytest.mark.parametrize(
    ("mode", "outcome", "extra"),
    [
        ("captcha", "blocked", {}),
        ("login", "login_wall", {}),
        ("empty", "blocked", {}),
        ("truncate", "parse_failure", {}),
        ("layout", "parse_failure", {}),
        ("redirect_foreign", "refused", {}),
        ("redirect_private", "refused", {}),
        ("500", "http_error", {}),
        ("slow", "timeout", {"delay": 3}),
        ("reset", "network_error", {}),
        # Real webcast envelopes (shared/real-captures): by meaning, never not_found.
        ("webcast_login", "login_wall", {}),
        ("webcast_refused", "blocked", {}),
    ],
)
def test_each_fault_is_classified_counted_survived_and_recovered(
    mode: str, outcome: str, extra: dict[str, Any], tmp_path: Path
) -> None:
    port = free_port()
    db = f"sqlite+aiosqlite:///{tmp_path}/c.db"
    with simulator("--freeze-at", "650") as sim:
        set_faults(sim, {"mode": mode, "match": ROOM_INFO, **extra})
        config = config_for(tmp_path, sim, db, port)
        with service(config) as proc:
            metrics = wait_for(
                lambda: (
                    (m := scrape(port))
                    and (metric_value(m, "collector_polls_total", outcome=outcome) or 0) >= 2
                    and m
                ),
                timeout=30,
            )
            assert metrics, f"no {outcome} outcomes within 30 s"
            # Every outcome series exists from the start, at 0 until it happens.
            assert metric_value(metrics, "collector_polls_total", outcome="ok") == 0
            assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
            if outcome == "parse_failure":
                assert metric_value(metrics, "collector_parse_failures_total", platform="tiktok") >= 2
            set_faults(sim)
            recovered = wait_for(
                lambda: metric_value(scrape(port), "livestream_viewers", target="lai-chau-shop"), timeout=30
            )
            assert recovered, "no recovery after the fault was cleared"
            assert proc.poll() is None
            stop(proc)
    with sqlite3.connect(f"{tmp_path}/c.db") as conn:
        kept = conn.execute(
            "SELECT count(*), min(body_size) FROM raw_snapshots WHERE outcome = ?", (outcome,)
        ).fetchone()
    if mode in ("captcha", "login", "truncate", "layout", "webcast_login", "webcast_refused"):
        count, smallest = kept
        assert count >= 1 and smallest > 0, "the body of the failed poll was not kept"


def stored_metrics(db: Path, target: str) -> dict[str, list[float]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT s.metric, s.value FROM samples s JOIN targets t ON t.id = s.target_id WHERE t.name = ?",
            (target,),
        ).fetchall()
    found: dict[str, list[float]] = {}
    for metric, value in rows:
        found.setdefault(metric, []).append(value)
    return found


def test_unsigned_room_info_zero_likes_never_become_samples(tmp_path: Path) -> None:
    port = free_port()
    with simulator("--freeze-at", "650") as sim:
        set_faults(sim, {"mode": "unsigned", "match": ROOM_INFO})
        config = config_for(tmp_path, sim, f"sqlite+aiosqlite:///{tmp_path}/c.db", port)
        with service(config) as proc:
            assert wait_for(
                lambda: (metric_value(scrape(port), "collector_polls_total", outcome="ok") or 0) >= 4, 30
            )
            metrics = scrape(port)
            assert metric_value(metrics, "livestream_viewers", target="lai-chau-shop")
            assert metric_value(metrics, "livestream_likes", target="lai-chau-shop") is None
            stop(proc)
    stored = stored_metrics(tmp_path / "c.db", "lai-chau-shop")
    assert stored["viewers"] and stored["views"], stored.keys()
    assert "likes" not in stored and "shares" not in stored, (
        "a zero the platform uses for 'not told' was stored"
    )


def test_room_finished_ends_the_session_keeps_its_counters_and_stops_reading_the_room(tmp_path: Path) -> None:
    port = free_port()
    with simulator("--freeze-at", "650") as sim:
        room = shop_room(sim)
        config = config_for(tmp_path, sim, f"sqlite+aiosqlite:///{tmp_path}/c.db", port)
        with service(config) as proc:
            assert wait_for(
                lambda: metric_value(scrape(port), "livestream_likes", target="lai-chau-shop"), 30
            )
            set_faults(sim, {"mode": "room_finished", "match": f"room_id={room}"})
            assert wait_for(
                lambda: metric_value(scrape(port), "collector_polls_total", outcome="not_live") or 0, 30
            ), "the finished room was not reported as not live"
            likes = metric_value(scrape(port), "livestream_likes", target="lai-chau-shop")
            finished = served_room_infos(sim, room)
            set_faults(sim)
            time.sleep(3)  # several poll intervals: user/room still names the finished room
            metrics = scrape(port)
            stop(proc)
        assert served_room_infos(sim, room) == finished, "the finished room was read again"
    assert metric_value(metrics, "livestream_likes", target="lai-chau-shop") == likes  # final counters stand
    with sqlite3.connect(tmp_path / "c.db") as conn:
        status = conn.execute(
            "SELECT last_status FROM live_sessions WHERE session_key = ?", (room,)
        ).fetchone()
    assert status == ("ended",)
    stored = stored_metrics(tmp_path / "c.db", "lai-chau-shop")
    assert 0.0 not in stored["likes"] + stored["views"], "the end wrote zero counters"


def test_429_retry_after_is_honoured_for_the_whole_host(tmp_path: Path) -> None:
    port = free_port()
    with simulator("--freeze-at", "650") as sim:
        set_faults(sim, {"mode": "429", "match": ROOM_INFO, "retry_after": 3, "count": 1})
        config = config_for(tmp_path, sim, f"sqlite+aiosqlite:///{tmp_path}/c.db", port)
        with service(config) as proc:
            assert wait_for(
                lambda: metric_value(scrape(port), "collector_polls_total", outcome="rate_limited"), 20
            )
            time.sleep(4.5)
            metrics = scrape(port)
            log = request_log(sim)
            stop(proc)
    limited = next(e for e in log if e["status"] == 429)
    # Requests already in flight when the 429 arrived (at most one per target) cannot be recalled;
    # anything that starts later must wait out the Retry-After.
    in_flight = 0.2
    after = [e["time"] for e in log if e["time"] > limited["done"] + in_flight]
    assert after, "no request after the 429"
    assert min(after) - limited["done"] >= 3 - 0.05, "a request went to the host before Retry-After passed"
    assert metric_value(metrics, "collector_rate_limit_waits_total", platform="tiktok") >= 1
    assert metric_value(metrics, "collector_polls_total", outcome="ok") >= 2


def silence_before_probe(log: list[dict[str, Any]], at_least: float) -> float | None:
    """The first quiet spell of `at_least` seconds between two platform requests, by the simulator's own
    timestamps (from the end of every earlier answer to the next arrival); None while there is none."""
    answered = 0.0
    for entry in sorted(log, key=lambda e: e["time"]):
        if answered and entry["time"] - answered >= at_least:
            return entry["time"] - answered
        answered = max(answered, entry.get("done", entry["time"]))  # no "done" yet while in flight
    return None


def test_503_burst_retries_opens_the_circuit_and_recovers(tmp_path: Path) -> None:
    port = free_port()
    reset = 4.0
    with simulator("--freeze-at", "650") as sim:
        set_faults(sim, {"mode": "503", "match": ROOM_INFO})
        breaker = f'breaker_failures = 3\nbreaker_reset = "{reset:g}s"'
        config = config_for(tmp_path, sim, f"sqlite+aiosqlite:///{tmp_path}/c.db", port, breaker)
        with service(config) as proc:
            opened = wait_for(
                lambda: metric_value(scrape(port), "collector_circuit_state", platform="tiktok") == 2, 30
            )
            assert opened, "the circuit never opened"
            assert metric_value(scrape(port), "collector_http_retries_total", platform="tiktok") >= 1
            # Polls are 1 s apart and back off at most 3 s, so only an open circuit keeps the host quiet for
            # `reset`; a request let out while it is open would break the silence. The faults stay on until
            # the probe that ends it has arrived, so a retry still in flight when the circuit opened cannot
            # be mistaken for one (it gets a 503 too and only moves the start of the silence).
            silence = wait_for(lambda: silence_before_probe(request_log(sim), reset - 0.05), 30)
            assert silence, "requests went out while the circuit was open"
            cleared = time.monotonic()
            set_faults(sim)
            assert wait_for(
                lambda: metric_value(scrape(port), "collector_circuit_state", platform="tiktok") == 0, 30
            )
            assert wait_for(
                lambda: metric_value(scrape(port), "livestream_viewers", target="lai-chau-shop"), 30
            )
            retries = metric_value(scrape(port), "collector_http_retries_total", platform="tiktok")
            print(
                f"503 burst: {retries:.0f} retries; silent {silence:.2f}s while open; "
                f"recovered {time.monotonic() - cleared:.1f}s after it ended"
            )
            stop(proc)


def test_postgres_outage_mid_run_loses_and_duplicates_nothing(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with simulator("--freeze-at", "650") as sim:
        config = config_for(tmp_path, sim, postgres_url, port)
        with service(config) as proc:
            assert wait_for(lambda: metric_value(scrape(port), "collector_samples_written_total"), 30), stop(
                proc
            )
            postgres_server.stop()
            down = time.monotonic()
            assert wait_for(lambda: (metric_value(scrape(port), "collector_spool_records") or 0) >= 4, 30)
            assert metric_value(scrape(port), "collector_write_failures_total") >= 1
            time.sleep(2)
            postgres_server.start()
            up = time.monotonic()
            assert wait_for(lambda: metric_value(scrape(port), "collector_spool_records") == 0, 60)
            print(
                f"database down {up - down:.1f}s; spool drained {time.monotonic() - up:.1f}s after it returned"
            )
            output = stop(proc)
        served = served_room_infos(sim, shop_room(sim))
    stored = asyncio.run(pg_rows(postgres_url, "lai-chau-shop"))
    print(f"outage: served {served}, stored {len(stored)}, duplicates {len(stored) - len(set(stored))}")
    assert len(stored) == len(set(stored)) == served, (served, len(stored), output[-2000:])


def test_sigterm_while_the_database_is_down_keeps_everything_for_the_next_start(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with simulator("--freeze-at", "650") as sim:
        config = config_for(tmp_path, sim, postgres_url, port)
        with spooling_service(config, port, postgres_server) as proc:
            output = stop(proc)
            assert "kept in the spool" in output
        postgres_server.start()
        with service(config) as proc:
            assert wait_for(lambda: metric_value(scrape(port), "collector_spool_records") == 0, 60)
            stop(proc)
        served = served_room_infos(sim, shop_room(sim))
    stored = asyncio.run(pg_rows(postgres_url, "lai-chau-shop"))
    print(
        f"sigterm while down: served {served}, stored {len(stored)}, duplicates {len(stored) - len(set(stored))}"
    )
    assert len(stored) == len(set(stored)) == served


def test_kill_9_mid_run_loses_nothing_already_fetched(
    postgres_server, postgres_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    with simulator("--freeze-at", "650") as sim:
        config = config_for(tmp_path, sim, postgres_url, port)
        with spooling_service(config, port, postgres_server) as proc:
            proc.kill()
            killed = time.time()
            proc.wait(10)
        room = shop_room(sim)
        # A response finished within a moment of the kill may not have reached the spool: not yet fetched.
        fetched = served_room_infos(sim, room, before=killed - 0.5)
        served_before_restart = served_room_infos(sim, room)
        postgres_server.start()
        with service(config) as proc:
            assert wait_for(lambda: metric_value(scrape(port), "collector_spool_records") == 0, 60)
            stop(proc)
        served_after_restart = served_room_infos(sim, room) - served_before_restart
    stored = asyncio.run(pg_rows(postgres_url, "lai-chau-shop"))
    print(
        f"kill -9: fetched before the kill {fetched}, served in all {served_before_restart + served_after_restart}, "
        f"stored {len(stored)}, duplicates {len(stored) - len(set(stored))}"
    )
    assert len(stored) == len(set(stored)), "duplicates after replay"
    assert fetched + served_after_restart <= len(stored) <= served_before_restart + served_after_restart
