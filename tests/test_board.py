"""The scoreboard in real Chromium against the real service on the event-week scenario: it shows what the
JSON endpoint says, and follows the simulator when it advances. Screenshots are kept as artifacts."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.harness import free_port, http_get, polled_since, run_cli, service, simulator, wait_for
from tests.html_report import chromium_or_skip
from tests.test_event_week import CAMPAIGN, event_config
from tests.test_fault_matrix import post

# Day one: the TikTok opening live and the first Shopee session are on; then later the same day.
FIRST, LATER = 4200, 8000
CARD_VALUES = (
    "els => Object.fromEntries(els.map(e => [e.closest('.card').dataset.key, Number(e.dataset.value)]))"
)


def headline(doc: dict) -> dict[str, float]:
    """What the board's cards show, read from the JSON document."""
    t = doc["totals"]
    return {
        "live_views": t["live_views"],
        "revenue": t["revenue"]["headline"],
        "orders": t["orders"]["reported"],
        "viewers_now": t["viewers_now"],
        "hashtag_views": t["hashtag_views"],
        "sessions": t["sessions"],
    }


def api(port: int) -> dict:
    status, body = http_get(f"http://127.0.0.1:{port}/api/campaigns/{CAMPAIGN}")
    assert status == 200, body
    return json.loads(body)


@pytest.mark.integration  # the service, the simulator and Chromium
def test_the_board_shows_the_json_numbers_and_follows_the_simulator(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = chromium_or_skip()
    artifacts = Path(os.environ.get("TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "TEST_SHOPEE_COOKIES": "SPC_EC=organiser-session; SPC_U=1"}
    env.pop("COLLECTOR_DATABASE_URL", None)
    with simulator("--scenario", "event-week", "--freeze-at", str(FIRST)) as sim:
        config = event_config(tmp_path / "event.toml", sim, port, f"sqlite+aiosqlite:///{tmp_path}/board.db")
        names = [line.split('"')[1] for line in config.read_text().splitlines() if line.startswith("name = ")]
        started = time.time()
        with service(config, env=env), sync_playwright() as playwright:
            assert wait_for(lambda: polled_since(port, names, started), timeout=60, interval=0.5)
            assert http_get(f"http://127.0.0.1:{port}/api/campaigns/no-such-campaign")[0] == 404
            assert http_get(f"http://127.0.0.1:{port}/board/{CAMPAIGN}?lang=fr")[0] == 400
            browser = playwright.chromium.launch(executable_path=chromium)
            try:
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                outside: list[str] = []
                page.on("request", lambda r: outside.append(r.url) if f":{port}/" not in r.url else None)
                page.goto(f"http://127.0.0.1:{port}/board/{CAMPAIGN}")

                def shown() -> dict[str, float]:
                    return page.eval_on_selector_all("#cards .value", CARD_VALUES)

                assert wait_for(lambda: shown() == headline(api(port)), timeout=20, interval=0.5), (
                    shown(),
                    headline(api(port)),
                )
                first = shown()
                assert first["live_views"] > 0 and first["revenue"] > 0 and first["orders"] > 0
                # The big number reads as the organisers write it: 1.234.567, with dots.
                text = page.inner_text("[data-key=live_views] .value")
                assert text.replace(".", "") == str(first["live_views"])
                live_now = api(port)["live_now"]
                assert live_now and page.locator("#live tr[data-session]").count() == len(live_now)
                page.screenshot(path=str(artifacts / "board-first.png"))

                stepped = time.time()
                post(f"{sim}/_sim/clock", {"freeze_at": LATER})
                assert wait_for(lambda: polled_since(port, names, stepped), timeout=60, interval=0.5)
                assert wait_for(
                    lambda: shown() == headline(api(port)) and shown()["live_views"] > first["live_views"],
                    timeout=30,
                    interval=0.5,
                ), (first, shown(), headline(api(port)))
                page.screenshot(path=str(artifacts / "board-later.png"))

                english = browser.new_page(viewport={"width": 1280, "height": 720})
                english.goto(f"http://127.0.0.1:{port}/board/{CAMPAIGN}?lang=en")
                english.wait_for_selector("[data-key=live_views] .value")
                assert "Live views" in english.inner_text("#cards")
                assert outside == []  # no external assets: the board works offline
            finally:
                browser.close()
    print(f"board screenshots in {artifacts}")


async def test_the_board_api_answers_503_while_the_database_is_unreachable(tmp_path: Path) -> None:
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    from collector.board import CampaignDocuments, board_routes
    from collector.config import build_config
    from collector.store import create_engine

    # A SQLite file in a directory that does not exist cannot be opened: the database is "down".
    url = f"sqlite+aiosqlite:///{tmp_path}/missing/dir/c.db"
    config = build_config(
        {"campaigns": {CAMPAIGN: {"title": "Tuần lễ nông sản"}}}, source="test", adapters={}, env={}
    )
    engine = create_engine(url)
    app = web.Application()
    board_routes(CampaignDocuments(engine, config))(app)
    try:
        async with TestClient(TestServer(app)) as client:
            down = await client.get(f"/api/campaigns/{CAMPAIGN}")
            assert down.status == 503 and await down.json() == {"error": "database unavailable"}
            # The page itself needs no database: it is served and keeps polling.
            page = await client.get(f"/board/{CAMPAIGN}?lang=en")
            assert page.status == 200 and "<title>Tuần lễ nông sản</title>" in await page.text()
    finally:
        await engine.dispose()


@pytest.mark.integration  # runs the CLI
def test_report_names_the_problem_instead_of_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[collector]\ndatabase_url = "sqlite+aiosqlite:///{tmp_path}/c.db"\n', encoding="utf-8"
    )
    assert run_cli("db", "upgrade", "--config", str(config)).returncode == 0
    unknown = run_cli("report", "--config", str(config), "--campaign", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "Error: no targets of campaign 'nope' in the database (known: none)"
    bad_time = run_cli("report", "--config", str(config), "--campaign", "nope", "--since", "yesterday")
    assert bad_time.returncode == 2 and "'yesterday': use ISO 8601" in bad_time.stderr
