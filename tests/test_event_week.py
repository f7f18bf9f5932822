"""The `event-week` scenario end to end: three days of TikTok and Shopee sessions, a Facebook simulcast
and two campaign hashtags, run through the real service in compressed time. The totals an organiser
reports (live views, orders, revenue, hashtag views) must equal what `collector export` gives, and
`collector report` must give the simulator's truth with each broadcast counted once."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.harness import free_port, run_cli, service, simulator, truth, wait_for_polls_started_after
from tests.html_report import check_html_report
from tests.test_fault_matrix import post

# Starts the simulator and the service as subprocesses, against SQLite and PostgreSQL.
pytestmark = pytest.mark.integration

DAY = 86400
# Scenario instants to visit: twice during each day's broadcasts (so live-bag sales have a baseline
# and a later count) and just after they end (so the final counters are read).
STEPS = (4200, 8000, 10900, 90600, 94000, 97300, 178800, 183000, 185500)
SHOPEE_SESSIONS = ("653166490", "712139530", "198817404")
TAGS = ("nongsanlaichau", "lienketvunglaichau")
CAMPAIGN = "mega-livestream-lai-chau"
ACCOUNTS = ("shop_vn", "nongsanlaichau_official", "htx_che_laichau")


def event_config(path: Path, sim: str, port: int, database_url: str) -> Path:
    targets = [
        *(("tiktok", "live", f"tt-{a}", f'account = "{a}"') for a in ACCOUNTS),
        *(("tiktok", "hashtag", f"tag-{t}", f'tag = "#{t}"') for t in TAGS),
        # The first session through the browser (the share page's own JS fires joinv2), the others over HTTP.
        ("shopee", "live", f"sp-live-{SHOPEE_SESSIONS[0]}", f'session_id = "{SHOPEE_SESSIONS[0]}"'),
        *(
            ("shopee", "live", f"sp-live-{s}", f'session_id = "{s}"\nfetch = "http"')
            for s in SHOPEE_SESSIONS[1:]
        ),
        *(
            (
                "shopee",
                "shop_dashboard",
                f"sp-shop-{s}",
                f'session_id = "{s}"\ncookies_env = "TEST_SHOPEE_COOKIES"',
            )
            for s in SHOPEE_SESSIONS
        ),
        ("facebook", "live", "fb-simulcast", 'page = "laichau.ocop"'),
    ]
    tables = "\n".join(
        f'[[targets]]\nname = "{name}"\nplatform = "{platform}"\nkind = "{kind}"\n{fields}\n'
        f'campaign = "{CAMPAIGN}"\n'
        for platform, kind, name, fields in targets
    )
    platforms = "\n".join(
        f'[platforms.{name}]\nbase_urls = {{ {urls} }}\nmin_interval = "1s"\nrequests_per_second = 50.0\n'
        for name, urls in (
            ("tiktok", f'web = "{sim}/www.tiktok.com", webcast = "{sim}/webcast.tiktok.com"'),
            (
                "shopee",
                f'live = "{sim}/live.shopee.vn", creator = "{sim}/creator.shopee.vn", short = "{sim}/vn.shp.ee"',
            ),
            ("facebook", f'web = "{sim}/www.facebook.com"'),
        )
    )
    path.write_text(
        f"""
[collector]
database_url = "{database_url}"
spool_dir = "{path.parent}/spool"
metrics_listen = "127.0.0.1:{port}"
default_interval = "1s"
flush_interval = "200ms"

[http]
timeout = "5s"

[browser]
navigation_timeout = "10s"

{platforms}
{tables}
""",
        encoding="utf-8",
    )
    return path


def test_event_week_totals_equal_the_export(tmp_path: Path, database_url: str) -> None:
    port = free_port()
    env = {**os.environ, "TEST_SHOPEE_COOKIES": "SPC_EC=organiser-session; SPC_U=1"}
    env.pop("COLLECTOR_DATABASE_URL", None)
    with simulator("--scenario", "event-week", "--freeze-at", str(STEPS[0])) as sim:
        config = event_config(tmp_path / "event.toml", sim, port, database_url)
        names = [line.split('"')[1] for line in config.read_text().splitlines() if line.startswith("name = ")]
        with service(config, env=env) as proc:
            try:
                for step in STEPS:
                    post(f"{sim}/_sim/clock", {"freeze_at": step})
                    stepped = time.time()
                    assert wait_for_polls_started_after(port, names, stepped), (
                        f"not every target polled at scenario second {step}"
                    )
                served = truth(sim)
            finally:
                proc.send_signal(signal.SIGTERM)
                output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, output[-3000:]

    export = run_cli("export", "--config", str(config), env=env)
    assert export.returncode == 0, export.stderr
    latest: dict[tuple[str, str, str], float] = {}
    for row in csv.DictReader(io.StringIO(export.stdout)):
        latest[(row["target"], row["metric"], row["session_id"])] = float(row["value"])

    def total(prefix: str, metric: str) -> float:
        return sum(v for (t, m, _s), v in latest.items() if t.startswith(prefix) and m == metric)

    tiktok, shopee, facebook = served["tiktok"], served["shopee"]["sessions"], served["facebook"]
    expected = {
        "live views (TikTok)": sum(tiktok[a]["views"] for a in ACCOUNTS),
        "live views (Facebook)": sum(v["views"] for v in facebook.values()),
        "orders (Shopee, reported)": sum(shopee[s]["dashboard"]["placedOrder"] for s in SHOPEE_SESSIONS),
        "revenue VND (Shopee, reported)": sum(shopee[s]["dashboard"]["placedGmv"] for s in SHOPEE_SESSIONS),
        "hashtag views": sum(tiktok["hashtags"][t]["views"] for t in TAGS),
    }
    exported = {
        "live views (TikTok)": total("tt-", "views"),
        "live views (Facebook)": total("fb-", "views"),
        "orders (Shopee, reported)": total("sp-shop-", "orders"),
        "revenue VND (Shopee, reported)": total("sp-shop-", "revenue"),
        "hashtag views": total("tag-", "hashtag_views"),
    }
    print(json.dumps({"expected": expected, "exported": exported}, indent=1))
    assert exported == expected
    # One live session per broadcast, keyed by the platform's room/session id.
    sessions = {s for (t, m, s) in latest if t.startswith("tt-") and m == "views"}
    assert sessions == {tiktok[a]["room_id"] for a in ACCOUNTS}
    # Estimated sales miss what sold before the first poll of a session, never more than was reported.
    for session in SHOPEE_SESSIONS:
        estimated = total(f"sp-live-{session}", "revenue")
        assert 0 < estimated <= shopee[session]["dashboard"]["placedGmv"], session

    # The campaign report: each broadcast once (a Shopee session has a public and a dashboard target),
    # its views from the shop's own figures where it has them.
    report = run_cli("report", "--config", str(config), "--campaign", CAMPAIGN, "--format", "json", env=env)
    assert report.returncode == 0, report.stderr
    totals = json.loads(report.stdout)["totals"]
    facebook_sessions = {s for (t, m, s) in latest if t.startswith("fb-") and m == "views"}
    truth_totals = {
        "live_views": expected["live views (TikTok)"]
        + expected["live views (Facebook)"]
        + sum(shopee[s]["dashboard"]["views"] for s in SHOPEE_SESSIONS),
        "orders": {"reported": expected["orders (Shopee, reported)"], "estimated": 0},
        "revenue reported": expected["revenue VND (Shopee, reported)"],
        "revenue estimated": total("sp-live-", "revenue"),
        "revenue headline": expected["revenue VND (Shopee, reported)"],
        "hashtag_views": expected["hashtag views"],
        "sessions": len(ACCOUNTS) + len(SHOPEE_SESSIONS) + len(facebook_sessions),
    }
    reported = {
        "live_views": totals["live_views"],
        "orders": totals["orders"],
        "revenue reported": totals["revenue"]["reported"],
        "revenue estimated": totals["revenue"]["estimated"],
        "revenue headline": totals["revenue"]["headline"],
        "hashtag_views": totals["hashtag_views"],
        "sessions": totals["sessions"],
    }
    print(json.dumps({"truth": truth_totals, "report": reported}, indent=1))
    assert reported == truth_totals
    assert totals["revenue"]["headline_sessions"] == {"reported": len(SHOPEE_SESSIONS), "estimated": 0}
    check_html_report(config, env, tmp_path)
