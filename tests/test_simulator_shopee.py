"""Shopee simulator: determinism, evolution, the JavaScript and cookie requirements, and truth consistency."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import re

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from simulator import shopee
from simulator.app import PLATFORMS, build_app
from simulator.clock import SimClock
from simulator.scenario import Scenario, demo

START = 1_725_850_000.0
COOKIE = {"Cookie": "SPC_F=abc; SPC_EC=token123; SPC_U=42"}
CREATOR = "/creator.shopee.vn/supply/api/lm/sellercenter/realtime"
SESSION_LIST = CREATOR + "/sessionList?page=1&pageSize=10&name=&orderBy=&sort=desc"


def scenario(name: str = "demo", seed: int = 1) -> Scenario:
    # Scenario's other fields belong to other platforms; only name and seed matter here.
    return dataclasses.replace(demo(seed), name=name)


def make_app(sc: Scenario, clock: SimClock) -> web.Application:
    app = build_app(sc, clock)
    if shopee not in PLATFORMS:  # until simulator/app.py lists it
        shopee.register(app)
    return app


def sessions(name: str = "demo", seed: int = 1) -> tuple[shopee.LiveSession, ...]:
    return shopee.sessions_for(name, seed)


def live_demo_session() -> shopee.LiveSession:
    return next(s for s in sessions() if s.start <= 0 < s.end)


def fetch(
    requests: list[tuple[float, str, str]], *, name: str = "demo", seed: int = 1, headers: dict | None = None
) -> list[tuple[int, bytes, dict]]:
    """Run (scenario second, method, path) requests with the clock frozen; (status, body, headers) each."""
    clock = SimClock(freeze_at=0.0, start=START)
    app = make_app(scenario(name, seed), clock)

    async def go() -> list[tuple[int, bytes, dict]]:
        async with TestClient(TestServer(app)) as client:
            out = []
            for at, method, path in requests:
                clock.freeze_at = at
                kwargs = {"json": {}} if method == "POST" and "joinv2" in path else {}
                response = await client.request(
                    method, path, headers=headers, allow_redirects=False, **kwargs
                )
                out.append((response.status, await response.read(), dict(response.headers)))
            return out

    return asyncio.run(go())


def fetch_json(requests: list[tuple[float, str, str]], **kwargs) -> list[dict]:
    return [orjson.loads(body) for _, body, _ in fetch(requests, **kwargs)]


def api(session: shopee.LiveSession, what: str) -> tuple[str, str]:
    method = "POST" if what == "joinv2" else "GET"
    return method, f"/live.shopee.vn/api/v1/session/{session.session_id}/{what}"


# --- worlds --------------------------------------------------------------------------------------


def test_worlds_are_deterministic_per_seed_and_differ_between_seeds() -> None:
    assert shopee.demo_world(3) == shopee.demo_world(3)
    assert shopee.event_week_world(3) == shopee.event_week_world(3)
    # Session ids and short links are stable so configs can name them; the seed varies items and counters.
    assert [s.session_id for s in shopee.demo_world(3)] == [s.session_id for s in shopee.demo_world(4)]
    assert [s.short_code for s in shopee.demo_world(3)] == [s.short_code for s in shopee.demo_world(4)]
    assert [s.items for s in shopee.demo_world(3)] != [s.items for s in shopee.demo_world(4)]
    assert shopee.sessions_for("no-such-scenario", 1) == ()


def test_demo_world_has_one_live_and_one_ended_session() -> None:
    ended, live = sessions()
    assert live.start == -600 and live.duration == 7200 and live.peak_viewers == 800 and len(live.items) == 4
    assert ended.end < 0
    assert shopee.state_at(1, live, 0).status == shopee.STATUS_LIVE
    assert shopee.state_at(1, ended, 0).status == shopee.STATUS_ENDED


def test_event_week_world_matches_the_script() -> None:
    week = sessions("event-week", 7)
    day = 86_400
    assert [(s.start, s.end) for s in week] == [
        (3600, 3600 + 7200),
        (day + 1800, day + 1800 + 7200),
        (2 * day + 3600, 2 * day + 3600 + 9000),
    ]
    for session in week:
        assert 3 <= len(session.items) <= 6
        assert all(50_000 <= item.price <= 450_000 for item in session.items)
        assert len({item.item_id for item in session.items}) == len(session.items)
    total = sum(shopee.truth(scenario("event-week", 7), 3 * day, START)["sessions"][str(s.session_id)]
                ["estimated_revenue"] for s in week)  # fmt: skip
    assert 100_000_000 <= total < 1_000_000_000  # hundreds of millions of VND


# --- routes ---------------------------------------------------------------------------------------


def test_same_seed_and_frozen_time_give_identical_bodies() -> None:
    live = live_demo_session()
    requests = [(900.0, *api(live, "joinv2")), (900.0, *api(live, "more_items"))]
    requests.append((900.0, "GET", SESSION_LIST))
    requests.append((900.0, "GET", f"{CREATOR}/dashboard/overview?sessionId={live.session_id}"))
    first = fetch(requests, headers=COOKIE)
    assert [b for _, b, _ in first] == [b for _, b, _ in fetch(requests, headers=COOKIE)]
    other_seed = fetch([(900.0, "GET", SESSION_LIST)], seed=2, headers=COOKIE)
    assert other_seed[0][1] != first[2][1]


def test_counters_evolve_during_the_session_and_freeze_after_it() -> None:
    live = live_demo_session()
    times = [0.0, 600.0, 1800.0, 3600.0, live.end - 1, live.end + 5, live.end + 3600]
    joins = fetch_json([(t, *api(live, "joinv2")) for t in times])
    bags = fetch_json([(t, *api(live, "more_items")) for t in times])
    rows = [j["data"]["session"] for j in joins]
    for earlier, later in itertools.pairwise(rows):
        assert later["member_cnt"] >= earlier["member_cnt"] and later["like_cnt"] >= earlier["like_cnt"]
    assert rows[2]["member_cnt"] > rows[0]["member_cnt"] and rows[2]["like_cnt"] > rows[0]["like_cnt"]
    assert [r["status"] for r in rows] == [1, 1, 1, 1, 1, 2, 2]
    assert rows[0]["end_time"] == 0 and rows[-1]["end_time"] == round((START + live.end) * 1000)
    assert 500 <= rows[1]["viewer_count"] <= 1000 and rows[-1]["viewer_count"] == 0
    assert rows[-2] == rows[-1]  # frozen after the end
    sold = [[item["sold"] for item in bag["data"]["items"]] for bag in bags]
    for earlier, later in itertools.pairwise(sold):
        assert all(b >= a for a, b in zip(earlier, later, strict=True))
    assert sum(sold[3]) > sum(sold[0])
    assert sold[-2] == sold[-1]
    item = bags[0]["data"]["items"][0]
    assert isinstance(item["price"], str) and item["original_price"] % shopee.PRICE_SCALE == 0


def test_a_session_before_its_start_is_scheduled_with_zero_counters() -> None:
    first_day = sessions("event-week")[0]
    (join,) = fetch_json([(0.0, *api(first_day, "joinv2"))], name="event-week")
    row = join["data"]["session"]
    assert row["status"] == 0 and row["end_time"] == 0
    assert (row["viewer_count"], row["member_cnt"], row["like_cnt"]) == (0, 0, 0)
    assert row["start_time"] == round((START + 3600) * 1000)


def test_unknown_session_answers_the_error_envelope() -> None:
    for method, path in (api(live_demo_session(), "joinv2"), api(live_demo_session(), "more_items")):
        (body,) = fetch_json([(10.0, method, path.replace(str(live_demo_session().session_id), "999"))])
        assert body["err_code"] != 0 and body["err_msg"] == "session not found" and body["data"] is None


def test_share_page_needs_javascript_for_any_number() -> None:
    live = live_demo_session()
    share = f"/live.shopee.vn/share?from=live&session={live.session_id}"
    ((status, page, headers),) = fetch([(900.0, "GET", share)])
    truth = shopee.truth(scenario(), 900.0, START)["sessions"][str(live.session_id)]
    text = page.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    numbers = [truth["viewer_count"], truth["member_cnt"], truth["like_cnt"], live.session_id]
    numbers += [item["sold"] for item in truth["items"]]
    assert not any(str(n) in text for n in numbers)
    assert live.title not in text and "<video" in text
    # The data arrives only through the calls the script makes, relative to the emulated host.
    assert '"/joinv2"' in text and '"/more_items"' in text and 'lastIndexOf("/share")' in text
    assert 'method: "POST"' in text and 'addEventListener("click", join)' in text


def test_short_link_redirects_to_the_share_page() -> None:
    live = live_demo_session()
    results = fetch([(0.0, "GET", f"/vn.shp.ee/{live.short_code}"), (0.0, "GET", "/vn.shp.ee/nope")])
    (status, _, headers), (missing, _, _) = results
    assert status == 302 and missing == 404
    assert re.search(
        rf"^/live\.shopee\.vn/share\?from=live&session={live.session_id}(&|$)", headers["Location"]
    )
    assert len({s.short_code for s in sessions()}) == len(sessions())


def test_play_param_lists_only_live_sessions() -> None:
    ended, live = sessions()
    clock = SimClock(freeze_at=60.0, start=START)

    async def go() -> tuple[dict, dict]:
        async with TestClient(TestServer(make_app(scenario(), clock))) as client:
            path = "/live.shopee.vn/api/v1/play_param/session"
            ok = await client.post(path, json={"session_ids": [live.session_id, ended.session_id, 5]})
            bad = await client.post(path, data=b"not json")
            return await ok.json(), await bad.json()

    ok, bad = asyncio.run(go())
    listed = ok["data"]["play_param_list"]
    assert [entry["session"]["session_id"] for entry in listed] == [live.session_id]
    assert listed[0]["session"]["username"] == live.username and bad["err_code"] != 0


@pytest.mark.parametrize(
    "headers",
    [None, {"Cookie": "SPC_F=abc"}, {"Cookie": "SPC_EC="}, {"Cookie": "XSPC_EC=1"}],
    ids=["none", "other-cookie", "empty-spc-ec", "look-alike"],
)
def test_creator_dashboard_requires_the_spc_ec_cookie(headers: dict | None) -> None:
    live = live_demo_session()
    paths = [SESSION_LIST, f"{CREATOR}/dashboard/overview?sessionId={live.session_id}"]
    for body in fetch_json([(60.0, "GET", p) for p in paths], headers=headers):
        assert body == {"is_login": False, "msg": "not login", "data": None}


def test_creator_session_list_and_overview_with_cookies() -> None:
    ended, live = sessions()
    listed, overview, missing = fetch_json(
        [
            (60.0, "GET", SESSION_LIST),
            (60.0, "GET", f"{CREATOR}/dashboard/overview?sessionId={live.session_id}"),
            (60.0, "GET", f"{CREATOR}/dashboard/overview?sessionId=1"),
        ],
        headers=COOKIE,
    )
    assert listed["code"] == 0 and listed["data"]["total"] == 2
    assert [row["sessionId"] for row in listed["data"]["list"]] == [live.session_id, ended.session_id]
    assert listed["data"]["list"][0]["duration"] == 660 and listed["data"]["list"][1]["duration"] == 5400
    data = overview["data"]
    assert data["status"] == 1 and isinstance(data["placedGmv"], float)
    assert data["pcu"] >= data["ccu"] > 0
    assert missing["code"] != 0 and missing["data"] is None
    # Sessions appear in the list only once they have started.
    (week,) = fetch_json([(0.0, "GET", SESSION_LIST)], name="event-week", headers=COOKIE)
    assert week["data"] == {"page": 1, "pageSize": 10, "total": 0, "list": []}


# --- truth -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["demo", "event-week"])
def test_truth_is_consistent_with_the_dashboard_and_the_items(name: str) -> None:
    for at in (0.0, 900.0, 4000.0, 90_000.0, 200_000.0, 400_000.0):
        for session in shopee.truth(scenario(name), at, START)["sessions"].values():
            board = session["dashboard"]
            increases = [item["sold"] - item["sold_at_start"] for item in session["items"]]
            assert all(n >= 0 for n in increases)
            gmv = sum(n * item["price"] for n, item in zip(increases, session["items"], strict=True))
            assert board["placedItemsSold"] == session["estimated_items_sold"] == sum(increases)
            assert board["placedGmv"] == float(gmv) == session["estimated_revenue"]
            assert board["placedOrder"] == -(-sum(increases) * 10 // 13)  # ceil(items / 1.3)
            for placed, confirmed in (("placedOrder", "confirmedOrder"), ("placedItemsSold", "confirmedItemsSold"),
                                      ("placedGmv", "confirmedGmv")):  # fmt: skip
                assert 0.92 * board[placed] - 1 <= board[confirmed] <= 0.97 * board[placed]
            assert board["status"] == session["status"] and board["ccu"] == session["viewer_count"]
            assert board["engagementData"]["likes"] == session["like_cnt"]


def test_truth_matches_what_the_routes_serve() -> None:
    live = live_demo_session()
    join, bag, board = fetch_json(
        [
            (1234.0, *api(live, "joinv2")),
            (1234.0, *api(live, "more_items")),
            (1234.0, "GET", f"{CREATOR}/dashboard/overview?sessionId={live.session_id}"),
        ],
        headers=COOKIE,
    )
    truth = shopee.truth(scenario(), 1234.0, START)["sessions"][str(live.session_id)]
    row = join["data"]["session"]
    assert {k: truth[k] for k in row} == row
    assert [i["sold"] for i in bag["data"]["items"]] == [i["sold"] for i in truth["items"]]
    assert [int(i["price"]) for i in bag["data"]["items"]] == [i["price"] for i in truth["items"]]
    assert board["data"] == truth["dashboard"]


def test_dashboard_freezes_after_the_end() -> None:
    live = live_demo_session()
    sc = scenario()
    after = shopee.truth(sc, live.end + 1, START)["sessions"][str(live.session_id)]
    later = shopee.truth(sc, live.end + 86_400, START)["sessions"][str(live.session_id)]
    assert after["dashboard"] == later["dashboard"] and after["dashboard"]["status"] == 2
    assert after["dashboard"]["ccu"] == 0 and after["dashboard"]["pcu"] > 0
    assert after["estimated_items_sold"] > 300  # about 600 expected over the 2 h
