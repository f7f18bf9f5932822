"""Parse time per page kind, and embedded-JSON extraction against a DOM-parsing baseline.

The live page is synthesised at a realistic size (real TikTok live pages are 300-600 KiB, most of it
inline scripts and styles before SIGI_STATE), so the figures say what one poll costs on the parse side.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import orjson
from selectolax.lexbor import LexborHTMLParser

from scrapers.tiktok import parse_live_page, parse_room_info, parse_user_room

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


def main() -> None:
    print(
        f"live page {len(LIVE_PAGE) / 1024:.0f} KiB, room/info {len(ROOM_INFO)} B, user/room {len(USER_ROOM)} B"
    )
    rows = [
        ("tiktok room/info (parse_room_info)", parse_room_info, ROOM_INFO, 2000),
        ("tiktok api-live/user/room (parse_user_room)", parse_user_room, USER_ROOM, 2000),
        ("tiktok live page SIGI_STATE (parse_live_page)", parse_live_page, LIVE_PAGE, 200),
        ("baseline: selectolax DOM + json (same page)", dom_baseline, LIVE_PAGE, 200),
    ]
    results = {}
    for label, fn, body, rounds in rows:
        results[label] = median_ms(fn, body, rounds)
        print(f"{label:50s} median {results[label]:8.3f} ms/page")
    ours = results["tiktok live page SIGI_STATE (parse_live_page)"]
    base = results["baseline: selectolax DOM + json (same page)"]
    print(f"byte search + orjson is {base / ours:.1f}x faster than the DOM baseline on the live page")


if __name__ == "__main__":
    main()
