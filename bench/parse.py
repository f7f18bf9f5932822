"""Parse time per page kind, and embedded-JSON extraction against a DOM-parsing baseline.

Every page kind is timed on its test fixture (the documented shapes, a few KiB). The TikTok live page
and the Facebook video page are also timed padded to a realistic size (real ones are 0.3-2 MiB, most of
it inline scripts and styles around the one JSON block we need), so the figures say what one poll costs
on the parse side.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import orjson
from selectolax.lexbor import LexborHTMLParser

from collector.api import RawResponse, check_status
from scrapers.facebook import MARKERS as FACEBOOK_MARKERS
from scrapers.facebook import parse_video_page
from scrapers.shopee import DashboardSession, parse_joinv2, parse_more_items, parse_overview
from scrapers.tiktok import adapter as tiktok
from scrapers.tiktok import (
    parse_challenge_detail,
    parse_live_page,
    parse_room_info,
    parse_tag_page,
    parse_user_room,
)

NOW = datetime.now(UTC)
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
# Pages the real sites served (beside the repository; rows skipped when absent).
REAL = Path(__file__).resolve().parent.parent.parent / "shared" / "real-captures"

STATE = {
    "AppContext": {"appContext": {"language": "vi-VN", "region": "VN", "wid": "7" * 19}},
    "LiveRoom": {
        "liveRoomUserInfo": {
            "user": {
                "uniqueId": "shop_vn",
                "nickname": "Shop VN",
                "roomId": "7400000000000000001",
                "status": 2,
            },
            "liveRoom": {
                "title": "Sale 9.9",
                "startTime": 1725850000,
                "status": 2,
                "liveRoomStats": {"userCount": 1234, "enterCount": 56789},
            },
            "stats": {"followerCount": 250000},
        }
    },
    # Real pages carry large i18n and feature-flag blobs beside the room.
    "I18n": {f"key_{i}": f"Chuỗi giao diện số {i}" for i in range(3000)},
}
FILLER_SCRIPT = "<script>" + "window.__x=function(a){return a*2};" * 300 + "</script>\n"
FILLER_DIV = '<div class="css-1x2y3z4"><span data-e2e="nav">Trang chủ</span></div>\n' * 40
LIVE_PAGE = (
    "<!DOCTYPE html><html lang='vi-VN'><head><title>Shop VN LIVE</title>"
    + "<style>"
    + ".a{color:red}" * 4000
    + "</style>"
    + FILLER_SCRIPT * 20
    + "</head><body>"
    + FILLER_DIV * 20
    + '<script id="SIGI_STATE" type="application/json">'
    + json.dumps(STATE, ensure_ascii=False)
    + "</script>"
    + FILLER_SCRIPT * 5
    + "</body></html>"
).encode()
USER_ROOM = orjson.dumps(
    {
        "statusCode": 0,
        "message": "",
        "data": {
            "user": STATE["LiveRoom"]["liveRoomUserInfo"]["user"],
            "liveRoom": STATE["LiveRoom"]["liveRoomUserInfo"]["liveRoom"],
            "stats": {"followerCount": 250000},
        },
    }
)
ROOM_INFO = orjson.dumps(
    {
        "status_code": 0,
        "extra": {"now": 1725851000000},
        "data": {
            "id_str": "7400000000000000001",
            "status": 2,
            "title": "Sale 9.9",
            "create_time": 1725850000,
            "user_count": 1234,
            "like_count": 98765,
            "stats": {
                "total_user": 56789,
                "total_user_desp": "56.7K",
                "like_count": 98765,
                "share_count": 321,
                "follow_count": 45,
                "enter_count": 56789,
            },
            "owner": {"display_id": "shop_vn", "nickname": "Shop VN"},
        },
    }
)


def dom_baseline(body: bytes) -> dict:
    """What a DOM-first scraper does: parse the page, select the script, decode with json."""
    node = LexborHTMLParser(body).css_first("script#SIGI_STATE")
    return json.loads(node.text())


def median_ms(fn: Callable[[bytes], object], body: bytes, rounds: int) -> float:
    fn(body)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(body)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def padded(page: bytes, before: str = "</head>") -> bytes:
    """The page with ~500 KiB of realistic filler (inline scripts, styles, markup) around its data."""
    filler = ("<style>" + ".a{color:red}" * 4000 + "</style>" + FILLER_SCRIPT * 20 + FILLER_DIV * 20).encode()
    return page.replace(before.encode(), filler + before.encode(), 1)


def main() -> None:
    session = parse_session_row()
    fb_big = padded(fixture("facebook/video_live.html"))
    rows = [
        ("tiktok room/info", parse_room_info, fixture("tiktok/room_info_live.json")),
        ("tiktok api-live/user/room", parse_user_room, fixture("tiktok/user_room_live.json")),
        ("tiktok live page (fixture)", parse_live_page, fixture("tiktok/live_page_live.html")),
        ("tiktok live page (493 KiB)", parse_live_page, LIVE_PAGE),
        ("tiktok challenge/detail", parse_challenge_detail, fixture("tiktok/hashtag_detail.json")),
        ("tiktok tag page header", parse_tag_page, fixture("tiktok/hashtag_page_posts.html")),
        ("shopee joinv2", parse_joinv2, fixture("shopee/joinv2_live.json")),
        ("shopee more_items", parse_more_items, fixture("shopee/more_items_normal.json")),
        (
            "shopee dashboard overview",
            lambda b: parse_overview(b, session),
            fixture("shopee/creator_overview_live.json"),
        ),
        ("facebook video page (fixture)", parse_video_page, fixture("facebook/video_live.html")),
        (f"facebook video page ({len(fb_big) // 1024} KiB)", parse_video_page, fb_big),
        ("core ban/login check (493 KiB HTML page)", ban_check, LIVE_PAGE),
        ("core ban/login check (room/info JSON)", ban_check_json, fixture("tiktok/room_info_live.json")),
        *real_rows(),
    ]
    print(f"{'page kind':42s} {'size':>9s} {'median/page':>12s}")
    for label, fn, body in rows:
        rounds = 200 if len(body) > 100_000 else 2000
        print(f"{label:42s} {len(body):9d} {median_ms(fn, body, rounds):9.3f} ms")
    ours = median_ms(parse_live_page, LIVE_PAGE, 200)
    base = median_ms(dom_baseline, LIVE_PAGE, 200)
    print(
        f"baseline: selectolax DOM + json on the 493 KiB live page: {base:.3f} ms; "
        f"byte search + orjson: {ours:.3f} ms ({base / ours:.1f}x faster)"
    )


MARKERS = tiktok.markers


def real_rows() -> list[tuple[str, Callable[[bytes], object], bytes]]:
    """The real Facebook pages: the reel's split feedback makes the search read every block."""
    if not REAL.is_dir():
        print(f"({REAL} absent: no rows for the real captures)")
        return []
    rows: list[tuple[str, Callable[[bytes], object], bytes]] = []
    for name in ("watch_real.html", "reel.html"):
        body = (REAL / "facebook" / name).read_bytes()
        rows.append((f"facebook {name} (real, {len(body) // 1024} KiB)", parse_video_page, body))
        rows.append((f"core ban/login check ({name})", facebook_check, body))
    return rows


def facebook_check(body: bytes) -> None:
    check_status(
        RawResponse("https://www.facebook.com/watch/", 200, "text/html", body, NOW), FACEBOOK_MARKERS
    )


def ban_check(body: bytes) -> None:
    """What every response pays before its parser: status, empty-body and the platform's marker checks."""
    check_status(RawResponse("https://www.tiktok.com/@shop_vn/live", 200, "text/html", body, NOW), MARKERS)


def ban_check_json(body: bytes) -> None:
    check_status(
        RawResponse("https://webcast.tiktok.com/webcast/room/info/", 200, "application/json", body, NOW),
        MARKERS,
    )


def parse_session_row() -> DashboardSession:
    from scrapers.shopee import parse_session_list

    return parse_session_list(fixture("shopee/creator_session_list.json"))[0]


if __name__ == "__main__":
    main()
