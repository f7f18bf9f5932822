"""Checks of the HTML campaign report and its charts: valid PNGs of sensible size, opened in real Chromium."""

from __future__ import annotations

import os
import shutil
import struct
from pathlib import Path

import pytest

from tests.harness import run_cli

CHROMIUM = next((p for name in ("chromium", "chromium-browser") if (p := shutil.which(name))), None)
CHART_STEMS = ("concurrent-viewers", "live-views", "revenue", "hashtag-views")


def chromium_or_skip() -> str:
    if CHROMIUM is None:
        message = "Chromium not found (install Debian's chromium package)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return CHROMIUM


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; fails on anything that is not a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG signature"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13, "PNG without IHDR first"
    assert data[-8:-4] == b"IEND", "truncated PNG"
    return struct.unpack(">II", data[16:24])


def check_html_report(config: Path, env: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    page_path, charts = tmp_path / "report.html", tmp_path / "charts"
    result = run_cli(
        "report", "--config", str(config), "--campaign", "mega-livestream-lai-chau", "--format", "html",
        "-o", str(page_path), "--charts", str(charts), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(charts.glob("*.png"))
    assert [p.name for p in written] == sorted(f"mega-livestream-lai-chau-{s}.png" for s in CHART_STEMS)
    for path in written:
        width, height = png_size(path.read_bytes())
        assert 800 <= width <= 2400 and 300 <= height <= 1200, (path.name, width, height)
        assert path.stat().st_size > 10_000, path.name  # a drawn chart, not an empty canvas
    text = page_path.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_or_skip())
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_path.as_uri())
            images = page.eval_on_selector_all(
                "#charts img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
            )
            assert len(images) == len(CHART_STEMS)
            for (complete, width, height), path in zip(images, written, strict=False):
                assert complete and width >= 800 and height >= 300, (path.name, width, height)
            headline = page.inner_text("#headline")
            assert "Lượt xem live" in headline and "₫" in headline
            page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
        finally:
            browser.close()
