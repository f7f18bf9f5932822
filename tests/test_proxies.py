"""Proxy rotation for real: two forward proxies on loopback, the first one banned by the platform."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from aiohttp import web

from collector.browser import BrowserPool, find_chromium
from collector.config import BrowserSettings, HttpSettings, TargetConfig
from collector.metrics import LiveState, SelfMetrics
from tests.harness import free_port, metric_value, proxies, scrape, service, simulator, wait_for, write_config

# Starts the simulator and the service as subprocesses, and Chromium.
pytestmark = pytest.mark.integration


def test_a_banned_proxy_is_rotated_away_from_and_the_next_one_carries_the_polls(tmp_path: Path) -> None:
    port = free_port()
    with proxies(True, False) as (banned, good), simulator("--freeze-at", "650") as sim:
        config = write_config(
            tmp_path / "c.toml",
            database_url=f"sqlite+aiosqlite:///{tmp_path}/c.db",
            sim_url=sim,
            metrics_port=port,
            targets='[[targets]]\nname = "shop"\nplatform = "tiktok"\nkind = "live"\naccount = "shop_vn"\n',
        )
        text = config.read_text().replace(
            "requests_per_second = 50.0", 'requests_per_second = 50.0\nproxies_env = "TEST_PROXIES"'
        )
        config.write_text(text)
        env = {**os.environ, "TEST_PROXIES": f"{banned.url},{good.url}"}
        with service(config, env=env) as proc:
            try:
                body = wait_for(
                    lambda: (
                        (m := scrape(port)) and metric_value(m, "livestream_viewers", target="shop") and m
                    ),
                    30,
                )
            finally:
                proc.send_signal(signal.SIGTERM)
                output = proc.communicate(timeout=30)[0]
    assert body, output[-2000:]
    assert metric_value(body, "collector_polls_total", outcome="blocked") >= 1
    assert metric_value(body, "collector_proxy_rotations_total", platform="tiktok") >= 1
    assert banned.seen and good.seen
    assert all("/www.tiktok.com/" in u or "/webcast.tiktok.com/" in u for u in good.seen)


async def test_browser_pages_go_out_through_the_platforms_current_proxy() -> None:
    try:
        chromium = find_chromium(None)
    except RuntimeError as exc:
        if os.environ.get("CI") == "true":
            raise  # CI must drive the real browser
        pytest.skip(str(exc))
    target = TargetConfig("shop", "tiktok", "hashtag", 30.0, {"tag": "x"})

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<p>via proxy</p>", content_type="text/html")

    origin = web.Application()
    origin.router.add_get("/page", page)
    runner = web.AppRunner(origin)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    page_url = f"http://127.0.0.1:{runner.addresses[0][1]}/page"
    with proxies(False, False) as (first, second):
        pool = BrowserPool(
            BrowserSettings(executable_path=chromium), HttpSettings(), SelfMetrics(LiveState([]))
        )
        await pool.start()
        try:
            capture = await pool.fetcher(target, [], proxy=first.url).capture(page_url)
            assert "via proxy" in capture.page.body.decode()
            await pool.fetcher(target, [], proxy=second.url).capture(page_url)
        finally:
            await pool.close()
    await runner.cleanup()
    assert page_url in first.seen and page_url in second.seen
