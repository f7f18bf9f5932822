"""`collector backfill` as operators run it: real subprocesses, the real simulator, SQLite. A history job
killed with SIGKILL resumes from its cursor; a job started while `collector run` polls is run by the
service, so the platform sees one per-host budget; progress and summaries read well in a pipe."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.harness import CLI, free_port, run_cli, service, simulator, wait_for, write_config
from tests.test_fault_matrix import post, request_log, set_faults

pytestmark = pytest.mark.integration

CYCLE = 2580  # shop_vn's broadcasts in the demo scenario: a new room every 2580 s, 2400 s long
SHOP = """
[[targets]]
name = "shop"
platform = "tiktok"
kind = "live"
account = "@shop_vn"
interval = "1s"
keep_every_body = true
"""


def sessions_seen(config: Path, sim: str, rooms: int) -> None:
    """Let the collector see `rooms` of shop_vn's broadcasts while they are live."""
    for n in range(rooms):
        post(f"{sim}/_sim/clock", {"freeze_at": 600 + n * CYCLE})
        # `once` carries the target's state over from the run before: its first poll here finds the
        # previous room ended (and records that), the second reads the new room.
        for _ in range(2 if n else 1):
            result = run_cli("once", "--config", str(config), "--format", "json")
            assert result.returncode == 0, result.stderr
    post(f"{sim}/_sim/clock", {"freeze_at": 600 + rooms * CYCLE + 2400})  # every one of them has ended


def shop_config(tmp_path: Path, sim: str) -> Path:
    """The shop target on SQLite in `tmp_path` (c.db), polling the simulator at `sim`."""
    db = tmp_path / "c.db"
    return write_config(
        tmp_path / "c.toml",
        database_url=f"sqlite+aiosqlite:///{db}",
        sim_url=sim,
        metrics_port=free_port(),
        targets=SHOP,
    )


def rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def job(config: Path, job_id: int) -> dict:
    result = run_cli("backfill", "show", str(job_id), "--config", str(config), "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_history_killed_mid_way_resumes_from_its_cursor_without_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with simulator("--freeze-at", "600") as sim:
        config = shop_config(tmp_path, sim)
        sessions_seen(config, sim, 5)
        # Each room/info answer takes a second, so the job is still running when it is killed.
        set_faults(sim, {"mode": "slow", "match": "room/info", "delay": 1.0})
        proc = subprocess.Popen(
            [*CLI, "backfill", "history", "--config", str(config)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert wait_for(lambda: rows(db, "SELECT 1 FROM backfill_jobs WHERE cursor >= 2"), timeout=30)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        before = job(config, 1)
        assert before["status"] == "running" and 2 <= before["cursor"] < 5
        resumed = run_cli("backfill", "resume", "1", "--config", str(config))
        assert resumed.returncode == 0, resumed.stderr
        assert f"resuming job 1 (history) at {before['cursor']}/5" in resumed.stderr
        after = job(config, 1)
        # A fresh job over the same sessions writes nothing new: everything is already stored once.
        set_faults(sim)
        again = run_cli("backfill", "history", "--config", str(config))
        assert again.returncode == 0, again.stderr
    assert after["status"] == "done" and after["cursor"] == 5 and after["total"] == 5
    final = rows(
        db,
        "SELECT metric, observed_at FROM samples WHERE observed_at IN (SELECT ended_at FROM live_sessions)",
    )
    assert len({at for _, at in final}) == 5  # the five rooms' end times, each with its final counters
    assert max(Counter(final).values()) == 1
    assert "job 2 history done: already_stored " in again.stdout and "written 0" in again.stdout


def test_a_backfill_beside_the_running_service_shares_its_per_host_budget(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    rate = 2.0
    with simulator("--freeze-at", "600") as sim:
        config = shop_config(tmp_path, sim)
        sessions_seen(config, sim, 8)
        config.write_text(
            config.read_text().replace("requests_per_second = 50.0", f"requests_per_second = {rate}")
        )
        post(f"{sim}/_sim/clock", {"freeze_at": 600 + 7 * CYCLE + 100})  # the newest room is live again
        with service(config) as proc:
            assert wait_for(lambda: rows(db, "SELECT 1 FROM collector_instances"), timeout=20), proc
            started = time.time()
            backfill = run_cli("backfill", "history", "--config", str(config), timeout=120)
            finished = time.time()
        log = [r for r in request_log(sim) if started <= r["time"] <= finished]
    assert backfill.returncode == 0, backfill.stderr
    assert "handed to the running collector" in backfill.stderr
    assert "job 1 history done:" in backfill.stdout
    starts = sorted(r["time"] for r in log)
    history_fetches = [r for r in log if "room/info" in r["path"]]
    assert len(history_fetches) >= 8 and len(starts) >= 10
    # Demand is over the budget (8 history fetches at once beside a poll a second): two processes with
    # a limiter each would send ~3/s. One budget keeps every 2 s window to 2 x rate (+1 for arrival jitter).
    busiest = max(sum(1 for t in starts if s <= t < s + 2.0) for s in starts)
    overall = (len(starts) - 1) / (starts[-1] - starts[0])
    print(f"\ncombined request rate at the simulator: {overall:.2f}/s over {len(starts)} requests, "
          f"busiest 2 s window {busiest} (limit {rate}/s)")  # fmt: skip
    assert busiest <= 2 * rate + 1
    assert overall <= rate * 1.05


def test_reprocess_and_gaps_from_the_cli_in_a_pipe(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    with simulator("--freeze-at", "600") as sim:
        config = shop_config(tmp_path, sim)
        sessions_seen(config, sim, 1)
        time.sleep(4)  # more than three 1 s intervals without a poll: a gap
        post(f"{sim}/_sim/clock", {"freeze_at": 600 + CYCLE})
        for _ in range(2):  # the first finds the room before ended, the second reads the new one
            assert run_cli("once", "--config", str(config)).returncode == 0
        post(f"{sim}/_sim/clock", {"freeze_at": 600 + 2 * CYCLE + 2400})
        dry = run_cli("backfill", "history", "--dry-run", "--config", str(config))
        reprocess = run_cli("backfill", "reprocess", "--config", str(config))
        gaps = run_cli("backfill", "gaps", "--config", str(config))
        exported = run_cli("export", "--gaps", "--config", str(config))
        listed = run_cli("backfill", "list", "--config", str(config))
    assert dry.returncode == 0 and dry.stdout.splitlines()[0] == "history: would fetch 2 items"
    assert not rows(db, "SELECT 1 FROM backfill_jobs WHERE kind = 'history'")  # a dry run makes no job
    assert reprocess.returncode == 0, reprocess.stderr
    assert reprocess.stdout.startswith("job 1 reprocess done: added 0, bodies 5, changed 0, unchanged ")
    # In a pipe the progress is plain lines on stderr, the last one complete.
    assert "\r" not in reprocess.stderr
    assert re.fullmatch(r"job 1 reprocess: 5/5 [0-9.]+/s ETA 0s \(100%\)", reprocess.stderr.splitlines()[-1])
    assert gaps.returncode == 0, gaps.stderr
    header, *lines = exported.stdout.splitlines()
    assert header == "started_at,ended_at,platform,target,seconds,status,detail"
    # The gap the sleep made, and another between the two later `once` runs when starting one takes
    # longer than three intervals (a loaded machine); the room live before them has ended since, so
    # its final counters are known for each.
    assert 1 <= len(lines) <= 2, exported.stdout
    assert float(lines[0].split(",")[4]) >= 4  # the sleep's, first
    for gap in lines:
        assert ",tiktok,shop," in gap and ",partial,final counters of " in gap
    assert listed.stdout.splitlines()[0].split() == ["JOB", "KIND", "STATUS", "PROGRESS", "CREATED"]
