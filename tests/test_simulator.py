"""Platform simulator: determinism, evolution, the documented variants, truth and the server."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Callable

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulator.app import build_app, serve
from simulator.clock import SimClock
from simulator.counters import compact_count, hashtag_counters, session_counters
from simulator.scenario import SCENARIOS, Scenario, demo, event_week, latest_session

START = 1_725_850_000.0  # fixed scenario epoch so bodies are byte-identical across runs
API_LIVE = "/www.tiktok.com/api-live/user/room/?aid=1988&uniqueId={}&sourceType=54"
LIVE_PAGE = "/www.tiktok.com/@{}/live"
ROOM_INFO = "/webcast.tiktok.com/webcast/room/info/?aid=1988&room_id={}"
CHECK_ALIVE = "/webcast.tiktok.com/webcast/room/check_alive/?aid=1988&room_ids={}"
SIGI_RE = re.compile(r'<script id="SIGI_STATE" type="application/json">(.*?)</script>', re.S)

# shop_vn's script: first session from -300 s for 2400 s, then 180 s off (platforms.md 2.1 status).
SHOP_FIRST_END = 2100.0
SHOP_SECOND_START = 2280.0


def fetch_bodies(
    requests: list[tuple[float, str]], seed: int = 1, scenario: Callable[[int], Scenario] = demo
) -> list[bytes]:
    """GET each path with the clock frozen at its scenario second; return the raw bodies."""
    clock = SimClock(freeze_at=0.0, start=START)
    app = build_app(scenario(seed), clock)

    async def go() -> list[bytes]:
        async with TestClient(TestServer(app)) as client:
            bodies = []
            for at, path in requests:
                clock.freeze_at = at
                response = await client.get(path)
                assert response.status == 200, path
                bodies.append(await response.read())
            return bodies

    return asyncio.run(go())


def fetch_json(
    requests: list[tuple[float, str]], seed: int = 1, scenario: Callable[[int], Scenario] = demo
) -> list[dict]:
    """Like fetch_bodies, decoding JSON bodies."""
    return [orjson.loads(body) for body in fetch_bodies(requests, seed, scenario)]


def accounts_of(truth: dict) -> dict:
    """truth["tiktok"] without its "hashtags" entry: the per-account truth."""
    return {name: entry for name, entry in truth["tiktok"].items() if name != "hashtags"}


def sigi_of(page: bytes) -> dict:
    """The SIGI_STATE JSON embedded in a live page."""
    match = SIGI_RE.search(page.decode())
    assert match, "no SIGI_STATE script"
    return orjson.loads(match.group(1))


def room_id_at(unique_id: str, at: float) -> str:
    """The room id api-live reports for the user at a scenario second."""
    (body,) = fetch_json([(at, API_LIVE.format(unique_id))])
    return body["data"]["user"]["roomId"]


def test_same_seed_and_frozen_time_give_identical_bodies():
    room = room_id_at("nongsanlaichau_official", 600)
    paths = [
        API_LIVE.format("shop_vn"),
        LIVE_PAGE.format("nongsanlaichau_official"),
        ROOM_INFO.format(room),
        CHECK_ALIVE.format(room),
        "/_sim/truth",
    ]
    first = fetch_bodies([(600.0, path) for path in paths], seed=7)
    second = fetch_bodies([(600.0, path) for path in paths], seed=7)
    assert first == second


def test_different_seed_gives_different_room_ids_and_counters():
    one, two = (fetch_json([(600.0, "/_sim/truth")], seed=seed)[0]["tiktok"] for seed in (1, 2))
    assert one["shop_vn"]["room_id"] != two["shop_vn"]["room_id"]
    assert one["nongsanlaichau_official"]["views"] != two["nongsanlaichau_official"]["views"]


def test_room_ids_are_19_digit_numeric_strings():
    truth = accounts_of(fetch_json([(600.0, "/_sim/truth")])[0])
    room_ids = [entry["room_id"] for entry in truth.values() if entry["room_id"]]
    assert len(room_ids) == 4
    assert all(re.fullmatch(r"\d{19}", room_id) for room_id in room_ids)


def test_cumulative_counters_never_decrease_within_a_session():
    room = room_id_at("shop_vn", 0)
    times = [t * 37.0 for t in range(0, 70)]  # across the session end at 2100 s
    bodies = fetch_json([(t, ROOM_INFO.format(room)) for t in times])
    for key in ("total_user", "like_count", "share_count", "follow_count", "enter_count"):
        series = [body["data"]["stats"][key] for body in bodies]
        assert series == sorted(series), key
        assert series[-1] > series[0] > 0, key
    assert all(
        body["data"]["user_count"] > 0 for body, t in zip(bodies, times, strict=True) if t < SHOP_FIRST_END
    )


def test_counter_functions_are_monotonic_at_fine_resolution():
    scenario = demo(3)
    session = latest_session(scenario, scenario.tiktok["nongsanlaichau_official"], 0.0)
    assert session is not None
    previous = session_counters(3, session, session.start)
    elapsed = session.start
    while elapsed < session.end + 60:
        elapsed += 1.3
        current = session_counters(3, session, elapsed)
        assert current.viewers >= 0
        for name in ("views", "likes", "shares", "follows"):
            assert getattr(current, name) >= getattr(previous, name), (name, elapsed)
        previous = current


def test_viewers_grow_dip_and_fall():
    scenario = demo(1)
    session = latest_session(scenario, scenario.tiktok["nongsanlaichau_official"], 0.0)
    assert session is not None

    def viewers(fraction: float) -> int:
        return session_counters(1, session, session.start + fraction * session.duration).viewers

    assert viewers(0.0) < viewers(0.3)
    assert viewers(0.55) < 0.8 * viewers(0.4)  # the mid-session dip
    assert viewers(0.999) < 0.1 * viewers(0.4)
    assert 2000 < viewers(0.3) < 6000  # thousands, as scripted


def test_session_ends_with_status_4_then_next_session_gets_new_room_id():
    first_room = room_id_at("shop_vn", 0)
    after_end, later, next_live = SHOP_FIRST_END + 30, SHOP_FIRST_END + 150, SHOP_SECOND_START + 30
    api_ended, info_ended, info_later, api_next, info_old = fetch_json(
        [
            (after_end, API_LIVE.format("shop_vn")),
            (after_end, ROOM_INFO.format(first_room)),
            (later, ROOM_INFO.format(first_room)),
            (next_live, API_LIVE.format("shop_vn")),
            (next_live, ROOM_INFO.format(first_room)),
        ]
    )
    # Stale room id with status 4 until the next broadcast starts (platforms.md 2.1).
    assert api_ended["data"]["user"] == {**api_ended["data"]["user"], "roomId": first_room, "status": 4}
    assert api_ended["data"]["liveRoom"]["status"] == 4
    assert info_ended["data"]["status"] == 4
    assert info_ended["data"]["finish_time"] == int(START + SHOP_FIRST_END)
    assert info_ended["data"]["user_count"] == 0
    assert info_later["data"]["stats"] == info_ended["data"]["stats"]  # frozen after the end
    assert info_old["data"]["stats"] == info_ended["data"]["stats"]
    new_room = api_next["data"]["user"]["roomId"]
    assert new_room != first_room and len(new_room) == 19
    assert api_next["data"]["user"]["status"] == 2
    assert api_next["data"]["liveRoom"]["startTime"] == int(START + SHOP_SECOND_START)


def test_late_starter_is_stale_offline_then_live_in_a_new_room():
    before, after = fetch_json(
        [
            (60.0, API_LIVE.format("htx_che_laichau")),
            (180.0, API_LIVE.format("htx_che_laichau")),
        ]
    )
    assert before["data"]["user"]["status"] == 4
    assert before["data"]["liveRoom"]["status"] == 4
    assert after["data"]["user"]["status"] == 2
    assert after["data"]["user"]["roomId"] != before["data"]["user"]["roomId"]


def test_paused_window_reports_status_3():
    room = room_id_at("nongsanlaichau_official", 0)
    before, paused, resumed = fetch_json([(t, ROOM_INFO.format(room)) for t in (590.0, 630.0, 700.0)])
    assert [b["data"]["status"] for b in (before, paused, resumed)] == [2, 3, 2]
    assert paused["data"]["user_count"] < before["data"]["user_count"]


def test_never_live_account_has_no_room():
    api, page = fetch_bodies(
        [(600.0, API_LIVE.format("offline_shop")), (600.0, LIVE_PAGE.format("offline_shop"))]
    )
    data = orjson.loads(api)["data"]
    assert data["user"]["roomId"] == ""
    assert "liveRoom" not in data
    assert data["stats"]["followerCount"] >= 1200
    assert "LiveRoom" not in sigi_of(page)


def test_unknown_user_is_user_not_found():
    api, page = fetch_bodies([(0.0, API_LIVE.format("ghost_user")), (0.0, LIVE_PAGE.format("ghost_user"))])
    assert orjson.loads(api) == {"statusCode": 19881007, "message": "user_not_found", "data": {}}
    assert "LiveRoom" not in sigi_of(page)


def test_live_page_embeds_the_same_room_as_api_live():
    api, page = fetch_bodies([(300.0, API_LIVE.format("shop_vn")), (300.0, LIVE_PAGE.format("shop_vn"))])
    data = orjson.loads(api)["data"]
    info = sigi_of(page)["LiveRoom"]["liveRoomUserInfo"]
    assert info["user"]["roomId"] == data["user"]["roomId"]
    assert info["liveRoom"] == data["liveRoom"]
    assert info["stats"] == data["stats"]


def test_age_restricted_room_refuses_room_info():
    room = room_id_at("adult_room_vn", 60)
    assert room
    (info,) = fetch_json([(60.0, ROOM_INFO.format(room))])
    assert info == {"status_code": 4003110, "data": {"prompts": ""}}


def test_unknown_room_id_is_a_nonzero_status_with_empty_data():
    (info,) = fetch_json([(60.0, ROOM_INFO.format("7000000000000000000"))])
    assert info["status_code"] not in (0, 4003110)
    assert info["data"] == {}


def test_check_alive_stays_true_for_an_ended_room():
    first_room = room_id_at("shop_vn", 0)
    live_room = room_id_at("nongsanlaichau_official", 0)
    ids = f"{first_room},{live_room},7000000000000000000"
    stale, much_later = fetch_json(
        [
            (SHOP_FIRST_END + 600, CHECK_ALIVE.format(ids)),
            (SHOP_FIRST_END + 10 * 3600, CHECK_ALIVE.format(first_room)),
        ]
    )
    assert stale["status_code"] == 0
    assert stale["data"] == [
        {"room_id": int(first_room), "alive": True},  # ended, yet still "alive" (platforms.md 2.1)
        {"room_id": int(live_room), "alive": True},
        {"room_id": 7000000000000000000, "alive": False},
    ]
    assert much_later["data"] == [{"room_id": int(first_room), "alive": False}]


@pytest.mark.parametrize("at", [0.0, 630.0, 2130.0, 5000.0])
def test_truth_matches_what_room_info_and_api_live_serve(at: float):
    (truth,) = fetch_json([(at, "/_sim/truth")])
    assert truth["now"] == START + at
    accounts = accounts_of(truth)
    assert set(accounts) == set(SCENARIOS["demo"](1).tiktok)
    for unique_id, expected in accounts.items():
        api, info = fetch_json(
            [(at, API_LIVE.format(unique_id)), (at, ROOM_INFO.format(expected["room_id"] or "0"))]
        )
        assert api["data"]["stats"]["followerCount"] == expected["followers"]
        if expected["room_id"] is None:
            continue
        assert api["data"]["user"]["roomId"] == expected["room_id"]
        assert api["data"]["liveRoom"]["liveRoomStats"] == {
            "userCount": expected["viewers"],
            "enterCount": expected["views"],
        }
        if expected["kind"] == "age_restricted":
            continue
        data = info["data"]
        assert info["extra"]["now"] == round((START + at) * 1000)
        assert data["status"] == expected["status"]
        assert data["user_count"] == expected["viewers"]
        assert data["stats"]["total_user"] == expected["views"]
        assert data["stats"]["total_user_desp"] == compact_count(expected["views"])
        assert data["stats"]["like_count"] == data["like_count"] == expected["likes"]
        assert data["stats"]["share_count"] == expected["shares"]
        assert data["stats"]["follow_count"] == expected["follows"]
        assert data["start_time"] == expected["start_time"]
        assert data["finish_time"] == (expected["finish_time"] or 0)


def test_compact_count_truncates_like_total_user_desp():
    assert compact_count(56_789) == "56.7K"
    assert compact_count(999) == "999"
    assert compact_count(12_000) == "12K"
    assert compact_count(3_456_789) == "3.4M"


def test_clock_scales_and_freezes():
    frozen = SimClock(speed=60, freeze_at=90.0, start=1000.0)
    assert frozen.elapsed() == 90.0 and frozen.now() == 1090.0
    running = SimClock(speed=100.0, start=1000.0)
    time.sleep(0.05)
    assert 4.0 <= running.elapsed() <= 30.0
    assert running.now() == pytest.approx(1000.0 + running.elapsed(), abs=1.0)


def test_request_log_records_platform_requests_only():
    clock = SimClock(freeze_at=10.0, start=START)
    app = build_app(demo(1), clock, request_log_size=3)

    async def go() -> list[dict]:
        async with TestClient(TestServer(app)) as client:
            await client.get(API_LIVE.format("shop_vn"))
            await client.get("/_sim/truth")
            for _ in range(3):
                await client.get(LIVE_PAGE.format("offline_shop"))
            return (await (await client.get("/_sim/requests")).json())["requests"]

    before = time.time()
    entries = asyncio.run(go())
    assert len(entries) == 3  # bounded; the oldest (api-live) fell out
    assert all(entry["path"] == "/www.tiktok.com/@offline_shop/live" for entry in entries)
    assert all(entry["method"] == "GET" and entry["time"] >= before for entry in entries)
    assert entries[0]["scenario_time"] == START + 10.0


def test_request_log_keeps_query_parameters():
    clock = SimClock(freeze_at=10.0, start=START)
    app = build_app(demo(1), clock)

    async def go() -> list[dict]:
        async with TestClient(TestServer(app)) as client:
            await client.get(API_LIVE.format("shop_vn"))
            return (await (await client.get("/_sim/requests")).json())["requests"]

    (entry,) = asyncio.run(go())
    assert entry["query"] == {"aid": "1988", "uniqueId": "shop_vn", "sourceType": "54"}


def test_serve_on_port_zero_reports_the_bound_port_and_cleans_up():
    async def go() -> tuple[str, dict]:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(
            serve("127.0.0.1", 0, seed=5, freeze_at=42.0, start=START, ready=ready.set_result)
        )
        url = await asyncio.wait_for(ready, 5)
        async with aiohttp.ClientSession() as session, session.get(url + "/_sim/truth") as response:
            truth = await response.json()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return url, truth

    url, truth = asyncio.run(go())
    port = int(url.rsplit(":", 1)[1])
    assert port > 0 and truth["seed"] == 5 and truth["elapsed"] == 42.0
    with socket.socket() as probe:  # the listener is gone after cancellation
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_serve_rejects_unknown_scenario():
    with pytest.raises(ValueError, match="unknown scenario"):
        asyncio.run(serve("127.0.0.1", 0, scenario="nope"))


# --- hashtags (platforms.md 2.2 and 6) ----------------------------------------------------------------

TAG_PAGE = "/www.tiktok.com/tag/{}"
DETAIL = "/www.tiktok.com/api/challenge/detail/?aid=1988&challengeName={}&msToken=abc"
SIGNED = DETAIL + "&X-Bogus=DFSzswTEST"
VVCOUNT_RE = re.compile(r'<h2 data-e2e="challenge-vvcount" title="(\w+)"[^>]*>(.*?)</h2>')


def test_unsigned_challenge_detail_is_an_empty_200():
    clock = SimClock(freeze_at=60.0, start=START)

    async def go() -> tuple[int, bytes]:
        async with TestClient(TestServer(build_app(demo(1), clock))) as client:
            response = await client.get(DETAIL.format("nongsanlaichau"))
            return response.status, await response.read()

    assert asyncio.run(go()) == (200, b"")
    assert fetch_bodies([(60.0, (DETAIL + "&X-Bogus=").format("nongsanlaichau"))]) == [b""]


def test_signed_challenge_detail_has_the_section_6_shape_and_the_truth():
    body, truth = fetch_json([(60.0, SIGNED.format("nongsanlaichau")), (60.0, "/_sim/truth")])
    expected = truth["tiktok"]["hashtags"]["nongsanlaichau"]
    assert body["statusCode"] == 0
    info = body["challengeInfo"]
    assert info["challenge"]["title"] == "nongsanlaichau" and info["challenge"]["id"].isdigit()
    assert info["stats"] == {"videoCount": expected["posts"], "viewCount": expected["views"]}
    assert info["statsV2"] == {"videoCount": str(expected["posts"]), "viewCount": str(expected["views"])}
    assert body["shareMeta"]["title"] == "#nongsanlaichau on TikTok"
    assert 7_000_000 < expected["views"] < 9_000_000  # ~8M in the demo


def test_old_markup_tag_has_the_zero_video_count_quirk_in_stats_only():
    body, truth = fetch_json([(60.0, SIGNED.format("OcopLaiChau")), (60.0, "/_sim/truth")])
    expected = truth["tiktok"]["hashtags"]["ocoplaichau"]
    assert body["challengeInfo"]["stats"] == {"videoCount": 0, "viewCount": expected["views"]}
    assert body["challengeInfo"]["statsV2"]["videoCount"] == str(expected["posts"])


def test_unknown_tag_is_10205_without_challenge_info_and_a_not_found_page():
    detail, page = fetch_bodies(
        [(60.0, SIGNED.format("khongtontai")), (60.0, TAG_PAGE.format("khongtontai"))]
    )
    assert orjson.loads(detail) == {"statusCode": 10205, "statusMsg": "challenge not found"}
    text = page.decode()
    assert "challenge-vvcount" not in text
    assert "Không tìm thấy hashtag" in text and "Couldn't find this hashtag" in text


def test_tag_pages_serve_the_newer_header_by_default_and_the_older_for_one_tag():
    new, old, upper, truth = fetch_bodies(
        [
            (60.0, TAG_PAGE.format("nongsanlaichau")),
            (60.0, TAG_PAGE.format("ocoplaichau")),
            (60.0, TAG_PAGE.format("NongSanLaiChau")),
            (60.0, "/_sim/truth"),
        ]
    )
    tags = orjson.loads(truth)["tiktok"]["hashtags"]
    (title, shown) = VVCOUNT_RE.findall(new.decode())[0]
    assert (title, shown) == ("posts", f"{compact_count(tags['nongsanlaichau']['posts'])} posts")
    assert shown == tags["nongsanlaichau"]["header"]
    (title, shown) = VVCOUNT_RE.findall(old.decode())[0]
    assert (title, shown) == (
        "views",
        f"<strong>{compact_count(tags['ocoplaichau']['views'])}</strong> views",
    )
    assert tags["ocoplaichau"]["markup"] == "views"
    assert upper == new  # tags ignore case
    assert '<h1 data-e2e="challenge-title"' in new.decode()
    assert re.search(r"snssdk\d+://challenge/detail/\d+", new.decode())


def test_tag_page_script_signs_the_detail_call_from_the_path_prefix():
    (page,) = fetch_bodies([(60.0, TAG_PAGE.format("lienketvunglaichau"))])
    script = page.decode()
    assert 'var name = "lienketvunglaichau";' in script
    assert "location.pathname" in script and "path.lastIndexOf('/tag/')" in script
    assert "prefix + '/api/challenge/detail/?" in script
    assert "'&msToken=' + msToken" in script and "'&X-Bogus=' + bogus" in script


def test_hashtag_counters_rise_and_are_deterministic():
    scenario = demo(1)
    for tag in scenario.hashtags.values():
        series = [hashtag_counters(1, tag, t) for t in range(-3600, 6 * 3600, 97)]
        assert [c.views for c in series] == sorted(c.views for c in series)
        assert [c.posts for c in series] == sorted(c.posts for c in series)
        assert series[-1].views > series[0].views and series[-1].posts > series[0].posts
        assert hashtag_counters(1, tag, 1234.5) == hashtag_counters(1, tag, 1234.5)
    one, two = (hashtag_counters(seed, scenario.hashtags["nongsanlaichau"], 0) for seed in (1, 2))
    assert one != two
    # Views visibly rise between two polls 5 s apart.
    tag = scenario.hashtags["nongsanlaichau"]
    assert hashtag_counters(1, tag, 5.0).views > hashtag_counters(1, tag, 0.0).views


def test_demo_accounts_are_unchanged_and_it_gains_three_tags():
    scenario = demo(1)
    assert list(scenario.tiktok) == [
        "shop_vn",
        "nongsanlaichau_official",
        "htx_che_laichau",
        "offline_shop",
        "adult_room_vn",
    ]
    assert set(scenario.hashtags) == {"nongsanlaichau", "lienketvunglaichau", "ocoplaichau"}
    assert "khongtontai" not in scenario.hashtags


# --- the event-week scenario ------------------------------------------------------------------------------

DAY = 86_400.0
EVENT_SESSIONS = {
    "shop_vn": (1_800.0, 1_800.0 + 7_200),
    "nongsanlaichau_official": (DAY + 3_600, DAY + 3_600 + 7_200),
    "htx_che_laichau": (2 * DAY + 5_400, 2 * DAY + 5_400 + 7_200),
}


def test_event_week_is_registered():
    assert SCENARIOS["event-week"] is event_week
    scenario = event_week(1)
    assert scenario.name == "event-week"
    assert set(scenario.tiktok) == {*EVENT_SESSIONS, "offline_shop"}
    assert set(scenario.hashtags) == {"nongsanlaichau", "lienketvunglaichau"}


@pytest.mark.parametrize("unique_id", EVENT_SESSIONS)
def test_event_week_accounts_have_exactly_one_session_at_the_scripted_time(unique_id: str):
    start, end = EVENT_SESSIONS[unique_id]
    scenario = event_week(1)
    account = scenario.tiktok[unique_id]
    assert len(account.plans) == 1 and account.cycle_seconds is None
    at = [start - 60, start + 60, (start + end) / 2, end - 60, end + 60, 3 * DAY + 3600]
    bodies = fetch_json([(t, API_LIVE.format(unique_id)) for t in at], scenario=event_week)
    before, *during, after, much_later = bodies
    assert before["data"]["user"]["roomId"] == "" and "liveRoom" not in before["data"]
    rooms = {body["data"]["user"]["roomId"] for body in (*during, after, much_later)}
    assert len(rooms) == 1 and len(rooms.pop()) == 19  # one session, one room id
    assert [body["data"]["liveRoom"]["status"] for body in during] == [2, 2, 2]
    assert during[0]["data"]["liveRoom"]["startTime"] == int(START + start)
    assert after["data"]["liveRoom"]["status"] == much_later["data"]["liveRoom"]["status"] == 4
    peak = max(
        session_counters(1, latest_session(scenario, account, end), t).viewers
        for t in range(int(start), int(end), 60)
    )
    assert 2_000 < peak < 6_000  # a few thousand viewers


def test_event_week_totals_and_hashtag_climb():
    start, middle, end = fetch_json(
        [(0.0, "/_sim/truth"), (1.5 * DAY, "/_sim/truth"), (3 * DAY, "/_sim/truth")], scenario=event_week
    )
    accounts = accounts_of(end)
    assert accounts["offline_shop"]["room_id"] is None
    total_views = sum(entry["views"] for entry in accounts.values())
    assert 600_000 < total_views < 800_000  # "nearly 800,000 live views"
    assert all(entry["status"] == 4 for name, entry in accounts.items() if name != "offline_shop")
    for name, (low, high) in {"nongsanlaichau": (5e6, 60e6), "lienketvunglaichau": (2e6, 25e6)}.items():
        first, mid, last = (truth["tiktok"]["hashtags"][name] for truth in (start, middle, end))
        assert 0.9 * low < first["views"] < 1.1 * low, name
        assert 0.9 * high < last["views"] < 1.1 * high, name
        assert first["views"] < mid["views"] < last["views"] and first["posts"] < mid["posts"] < last["posts"]
