"""Facebook simulator: determinism, counter evolution, live redirect discovery, login wall, the ended
replay, and the event-week simulcast (shapes: platforms.md 4.1 and 6)."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from simulator import facebook
from simulator.app import PLATFORMS, build_app
from simulator.clock import SimClock
from simulator.scenario import Scenario, demo

START = 1_725_850_000.0
WWW = "/www.facebook.com"
OCOP_LIVE = "1029384756102938"  # demo: laichau.ocop, -900 s for 5400 s, paused 2700..2820 s in
OCOP_END = -900 + 5400
HTX_REPLAY = "1122334455667788"  # demo: htx.chelaichau, ended before the scenario starts
PRIVATE_LIVE = "1357924680135792"  # demo: sanvat.taybac, login required
SIMULCAST = "1048576000000001"  # event-week: laichau.ocop
SJS_RE = re.compile(
    rb"<script type=\"application/json\" data-content-len=\"(\d+)\" data-sjs>(.*?)</script>", re.S
)


def scenario(name: str = "demo", seed: int = 1) -> Scenario:
    return replace(demo(seed), name=name)


def fetch(
    requests: list[tuple[float, str]], *, name: str = "demo", seed: int = 1, cookies: str = ""
) -> list[tuple[int, dict[str, str], bytes]]:
    """GET each path (redirects not followed) with the clock frozen at its scenario second."""
    clock = SimClock(freeze_at=0.0, start=START)
    app = build_app(scenario(name, seed), clock)
    if facebook not in PLATFORMS:  # until simulator/app.py lists it
        facebook.register(app)

    async def go() -> list[tuple[int, dict[str, str], bytes]]:
        async with TestClient(TestServer(app)) as client:
            answers = []
            for at, path in requests:
                clock.freeze_at = at
                headers = {"Cookie": cookies} if cookies else {}
                response = await client.get(path, allow_redirects=False, headers=headers)
                answers.append((response.status, dict(response.headers), await response.read()))
            return answers

    return asyncio.run(go())


def page(at: float, path: str, **kwargs: object) -> bytes:
    ((status, _, body),) = fetch([(at, path)], **kwargs)  # type: ignore[arg-type]
    assert status == 200, path
    return body


def blocks(body: bytes) -> list[object]:
    found = SJS_RE.findall(body)
    assert all(int(length) == len(raw) for length, raw in found)
    return [orjson.loads(raw) for _, raw in found]


def video_node(body: bytes) -> dict:
    """The Relay video node: ScheduledServerJS -> __bbox -> RelayPrefetchedStreamCache -> result.data.video."""
    nodes = []
    for block in blocks(body):
        for entry in block.get("require", []):  # type: ignore[union-attr]
            for payload in entry[3]:
                for cached in payload.get("__bbox", {}).get("require", []):
                    assert cached[0] == "RelayPrefetchedStreamCache"
                    video = cached[3][1]["__bbox"]["result"]["data"].get("video", {})
                    if "liveViewerCount" in video:
                        nodes.append(video)
    assert len(nodes) == 1, "exactly one block holds the video node"
    return nodes[0]


def video_path(video_id: str, slug: str = "laichau.ocop") -> str:
    return f"{WWW}/{slug}/videos/{video_id}"


def test_same_seed_and_time_give_identical_bodies_and_truth() -> None:
    paths = [video_path(OCOP_LIVE), f"{WWW}/watch/live/?v={HTX_REPLAY}", f"{WWW}/htx.chelaichau/live/"]
    first = fetch([(600.0, p) for p in paths], seed=7)
    assert first == fetch([(600.0, p) for p in paths], seed=7)
    assert facebook.truth(scenario(seed=7), 600, START) == facebook.truth(scenario(seed=7), 600, START)
    one, two = (facebook.truth(scenario(seed=s), 600, START)[OCOP_LIVE] for s in (1, 2))
    assert one["views"] != two["views"]


def test_page_serves_what_truth_says() -> None:
    truth = facebook.truth(scenario(), 600, START)[OCOP_LIVE]
    node = video_node(page(600, video_path(OCOP_LIVE)))
    assert node["id"] == OCOP_LIVE and node["owner"]["name"] == "OCOP Lai Châu"
    assert (node["broadcast_status"], node["live_status"], node["is_live_streaming"]) == (
        "LIVE",
        "LIVE",
        True,
    )
    assert node["liveViewerCount"] == truth["viewers"]
    assert node["video_view_count"] == truth["views"]
    feedback = node["feedback"]
    assert feedback["reaction_count"]["count"] == truth["reactions"]
    assert feedback["i18n_reaction_count"] == facebook.i18n_count(truth["reactions"], "vi")
    assert feedback["total_comment_count"] == truth["comments"]
    assert feedback["share_count"]["count"] == truth["shares"]
    assert 500 <= truth["viewers"] <= 700  # ~600 viewers, as scripted
    assert truth["start_time"] == int(START - 900) and truth["status"] == "live"


def test_several_data_sjs_blocks_only_one_with_the_video() -> None:
    body = page(600, video_path(OCOP_LIVE))
    assert len(blocks(body)) >= 4
    assert body.count(b"liveViewerCount") == 1
    assert b"ScheduledServerJS" in body and b"RelayPrefetchedStreamCache" in body


def test_counters_evolve_and_freeze_after_the_end() -> None:
    times = [-900 + 137.0 * i for i in range(45)]  # past the end at 4500 s
    series = [facebook.truth(scenario(), t, START)[OCOP_LIVE] for t in times]
    for name in ("views", "reactions", "comments", "shares"):
        values = [entry[name] for entry in series]
        assert values == sorted(values), name
        assert values[-1] > values[len(values) // 2] > values[1] > 0, name
    assert all(entry["viewers"] > 0 for entry, t in zip(series, times, strict=True) if t < OCOP_END)
    after = [facebook.truth(scenario(), OCOP_END + d, START)[OCOP_LIVE] for d in (0, 60, 86_400)]
    assert all(entry["viewers"] == 0 and entry["status"] == "ended" for entry in after)
    counts = [{k: e[k] for k in ("views", "reactions", "comments", "shares")} for e in after]
    assert counts[0] == counts[1] == counts[2]


def test_counters_are_monotonic_at_fine_resolution() -> None:
    video = facebook.WORLDS["event-week"].videos[0]
    previous = facebook.video_state(3, video, video.start)
    assert previous is not None
    t = video.start
    while t < video.end + 30:
        t += 0.7
        current = facebook.video_state(3, video, t)
        assert current is not None
        for name in ("views", "reactions", "comments", "shares"):
            assert getattr(current, name) >= getattr(previous, name), (name, t)
        previous = current


def test_paused_window() -> None:
    before, paused, resumed = (
        video_node(page(t, video_path(OCOP_LIVE))) for t in (-900 + 2650, -900 + 2760, -900 + 2900)
    )
    assert [(n["broadcast_status"], n["live_status"]) for n in (before, paused, resumed)] == [
        ("LIVE", "LIVE"), ("LIVE", "PAUSED"), ("LIVE", "LIVE")
    ]  # fmt: skip
    assert paused["liveViewerCount"] < 0.6 * before["liveViewerCount"]


def test_live_page_redirects_to_the_running_broadcast() -> None:
    ((status, headers, _),) = fetch([(600, f"{WWW}/laichau.ocop/live/")])
    assert status == 302
    assert headers["Location"] == f"{WWW}/laichau.ocop/videos/{OCOP_LIVE}/"
    # Paused still redirects; after the end the profile is served.
    ((status, _, _),) = fetch([(-900 + 2760, f"{WWW}/laichau.ocop/live/")])
    assert status == 302
    profile = page(OCOP_END + 10, f"{WWW}/laichau.ocop/live/")
    for marker in (b"liveViewerCount", b'"is_live_streaming":true', b'"broadcast_status":"LIVE"'):
        assert marker not in profile
    assert f'"video_id":"{OCOP_LIVE}"'.encode() in profile  # the replay is named, not live


def test_not_live_page_and_unknown_page() -> None:
    profile = page(600, f"{WWW}/htx.chelaichau/live/")
    assert b"liveViewerCount" not in profile and b"is_live_streaming" not in profile
    assert f'"video_id":"{HTX_REPLAY}"'.encode() in profile
    assert b"This content isn't available" in page(600, f"{WWW}/no.such.page/live/")
    assert b"This content isn't available" in page(600, video_path("1000000000000009"))


def test_login_wall_without_c_user_cookie() -> None:
    wall = page(600, video_path(PRIVATE_LIVE, "sanvat.taybac"))
    assert b'id="login_form"' in wall and b"useCometLogInFormQuery" in wall
    assert b"i18n_reaction_count" not in wall
    ((status, headers, _),) = fetch([(600, f"{WWW}/sanvat.taybac/live/")])
    assert status == 302 and headers["Location"].startswith(f"{WWW}/login/?next=")
    assert b'id="login_form"' in page(600, f"{WWW}/login/")
    # xs alone is not a session; c_user is.
    assert b'id="login_form"' in page(600, video_path(PRIVATE_LIVE, "sanvat.taybac"), cookies="xs=1")
    logged_in = page(600, video_path(PRIVATE_LIVE, "sanvat.taybac"), cookies="c_user=100012345678901; xs=1")
    assert (
        video_node(logged_in)["liveViewerCount"]
        == facebook.truth(scenario(), 600, START)[PRIVATE_LIVE]["viewers"]
    )
    ((status, headers, _),) = fetch([(600, f"{WWW}/sanvat.taybac/live/")], cookies="c_user=1; xs=1")
    assert status == 302 and headers["Location"].endswith(f"/videos/{PRIVATE_LIVE}/")


def test_signed_out_pages_carry_the_login_form_query_beside_their_content() -> None:
    """As the real site does (shared/real-captures/facebook): not a login wall, just signed out."""
    for path in (video_path(OCOP_LIVE), f"{WWW}/htx.chelaichau/live/"):
        body = page(600, path)
        assert b"useCometLogInFormQuery" in body and b'id="login_form"' in body
        signed_in = page(600, path, cookies="c_user=1; xs=1")
        assert b"useCometLogInFormQuery" not in signed_in and b'id="login_form"' not in signed_in
    assert video_node(page(600, video_path(OCOP_LIVE)))["id"] == OCOP_LIVE


def _relay_data(body: bytes) -> list[dict]:
    found = []
    for block in blocks(body):
        for entry in block.get("require", []):  # type: ignore[union-attr]
            for payload in entry[3]:
                found += [
                    c[3][1]["__bbox"]["result"]["data"] for c in payload.get("__bbox", {}).get("require", [])
                ]
    return found


def test_reel_redirects_and_splits_its_feedback() -> None:
    reel = facebook.REEL_ID
    for path in (f"{WWW}/watch/?v={reel}", video_path(reel)):
        ((status, headers, _),) = fetch([(600, path)])
        assert status == 302 and headers["Location"] == f"{WWW}/reel/{reel}/"
    body = page(600, f"{WWW}/reel/{reel}/")
    assert b"liveViewerCount" not in body and b"video_view_count" not in body
    truth = facebook.truth(scenario(), 600, START)[reel]
    assert (truth["reel"], truth["live_status"], truth["status"]) == (True, "NEVER_LIVE", "ended")
    root, bar = [d for d in _relay_data(body) if "video" in d]
    playback = root["video"]["creation_story"]["short_form_video_context"]["playback_video"]
    assert (playback["id"], playback["is_video_broadcast"], playback["is_live_streaming"]) == (
        reel,
        False,
        False,
    )
    reactions = bar["fb_reel_react_button"]["story"]["feedback"]
    assert reactions["id"] == bar["feedback"]["id"] and bar["video"]["id"] == reel
    assert reactions["likers"]["count"] == truth["reactions"]
    assert bar["feedback"]["total_comment_count"] == truth["comments"]
    assert bar["feedback"]["share_count_reduced"] == facebook.i18n_count(truth["shares"], "vi")
    # Another video id is not a reel.
    assert b"This content isn't available" in page(600, f"{WWW}/reel/{OCOP_LIVE}/")


def test_security_interstitial() -> None:
    body = page(600, video_path(facebook.INTERSTITIAL_ID))
    assert b"blocked by our security systems" in body and b'id="login_form"' in body
    assert b"liveViewerCount" not in body


def test_security_check_video() -> None:
    body = page(600, video_path(facebook.SECURITY_CHECK_ID))
    assert b"<title>Security Check Required</title>" in body
    assert b"data-sjs" not in body


def test_ended_replay_keeps_counts_on_every_url() -> None:
    truth = facebook.truth(scenario(), 600, START)[HTX_REPLAY]
    assert truth["status"] == "ended" and truth["end_time"] == int(START - 3600)
    urls = [
        video_path(HTX_REPLAY, "htx.chelaichau"),
        f"{WWW}/watch/?v={HTX_REPLAY}",
        f"{WWW}/video.php?v={HTX_REPLAY}",
    ]
    nodes = [video_node(page(t, url)) for t in (600, 7200) for url in urls]
    assert all(node == nodes[0] for node in nodes)
    node = nodes[0]
    assert (node["broadcast_status"], node["live_status"], node["is_live_streaming"]) == (
        "VOD_READY", "WAS_LIVE", False
    )  # fmt: skip
    assert node["liveViewerCount"] == 0
    # This page's counts are display strings only (en locale).
    assert node["viewCount"] == f"{truth['views']:,}"
    feedback = node["feedback"]
    assert "reaction_count" not in feedback and "share_count" not in feedback
    assert feedback["i18n_reaction_count"] == facebook.i18n_count(truth["reactions"], "en")
    assert feedback["comment_rendering_instance"]["comments"]["total_count"] == truth["comments"]
    assert feedback["share_count_reduced"] == facebook.i18n_count(truth["shares"], "en")
    assert re.fullmatch(r"\d+(\.\d)?K", feedback["i18n_reaction_count"])


def test_event_week_simulcast() -> None:
    start = facebook.EVENT_SIMULCAST_START
    assert start == 172_800 + 5_400
    truth = facebook.truth(scenario("event-week"), start - 1, START)[SIMULCAST]
    assert truth["status"] is None and truth["views"] == 0
    ((status, _, _),) = fetch([(start - 60, f"{WWW}/laichau.ocop/live/")], name="event-week")
    assert status == 200
    ((status, headers, _),) = fetch([(start + 60, f"{WWW}/laichau.ocop/live/")], name="event-week")
    assert status == 302 and headers["Location"].endswith(f"/videos/{SIMULCAST}/")
    peak = max(
        facebook.truth(scenario("event-week"), start + t, START)[SIMULCAST]["viewers"]
        for t in range(0, 7200, 60)
    )
    assert 1300 <= peak <= 1800
    ended = facebook.truth(scenario("event-week"), start + 7200, START)[SIMULCAST]
    assert ended["status"] == "ended" and ended["views"] > 0
    # The demo's videos are not in the event-week world, and unknown scenarios have no Facebook data.
    assert OCOP_LIVE not in facebook.truth(scenario("event-week"), 600, START)
    assert facebook.truth(scenario("nowhere"), 600, START) == {}


@pytest.mark.parametrize(
    ("n", "vi", "en"),
    [
        (0, "0", "0"),
        (999, "999", "999"),
        (1000, "1K", "1K"),
        (1450, "1,4K", "1.4K"),
        (2345, "2,3K", "2.3K"),
        (999_999, "999,9K", "999.9K"),
        (1_234_567, "1,2 Tr", "1.2M"),
        (3_000_000_000, "3 T", "3B"),
    ],
)
def test_i18n_count(n: int, vi: str, en: str) -> None:
    assert facebook.i18n_count(n, "vi") == vi
    assert facebook.i18n_count(n, "en") == en
    assert facebook.grouped(12345, "vi") == "12.345" and facebook.grouped(12345, "en") == "12,345"
