"""The simulator's fault modes that replay what the real sites answered (shared/real-captures): bodies
of the real shapes, and the collector's parsers classify them as they classify the captures."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner

from collector.cli import main
from collector.outcomes import Blocked, LoginWall, PollError
from schemas.types import LiveStatus
from scrapers.shopee import parse_joinv2
from scrapers.tiktok.live import parse_room_info
from simulator.app import build_app
from simulator.clock import SimClock
from simulator.faults import MODES, FaultRule, parse_rule
from simulator.scenario import demo

START = 1_725_850_000.0
ROOM_INFO = "/webcast.tiktok.com/webcast/room/info/"


def answer(mode: str, path: str, method: str = "GET") -> tuple[int, bytes]:
    """One request at scenario second 650 with one fault rule matching everything."""
    clock = SimClock(freeze_at=650.0, start=START)
    app = build_app(demo(1), clock, faults=[FaultRule(mode)] if mode else [])

    async def go() -> tuple[int, bytes]:
        async with TestClient(TestServer(app)) as client:
            response = await client.request(method, path)
            return response.status, await response.read()

    return asyncio.run(go())


def shop_room() -> str:
    _, body = answer("", "/_sim/truth")
    return orjson.loads(body)["tiktok"]["shop_vn"]["room_id"]


def test_unsigned_zeroes_likes_and_shares_and_nothing_else() -> None:
    path = f"{ROOM_INFO}?aid=1988&room_id={shop_room()}"
    signed, unsigned = (orjson.loads(answer(mode, path)[1])["data"] for mode in ("", "unsigned"))
    assert signed["like_count"] > 0 and signed["stats"]["share_count"] > 0
    assert unsigned["like_count"] == unsigned["stats"]["like_count"] == unsigned["stats"]["share_count"] == 0
    for key in ("user_count", "status", "id_str"):
        assert unsigned[key] == signed[key]
    assert unsigned["stats"]["total_user"] == signed["stats"]["total_user"]
    readings = {
        r.metric.value for r in parse_room_info(orjson.dumps({"status_code": 0, "data": unsigned})).readings
    }
    assert "likes" not in readings and "shares" not in readings and "viewers" in readings


@pytest.mark.parametrize(
    ("mode", "code", "expected"),
    [
        ("webcast_login", 20003, LoginWall),
        ("webcast_refused", 10013, Blocked),
        ("room_finished", 30003, None),
    ],
)
def test_webcast_envelopes_are_the_real_ones(mode: str, code: int, expected: type[PollError] | None) -> None:
    status, body = answer(mode, f"{ROOM_INFO}?aid=1988&room_id=1")
    doc = orjson.loads(body)
    assert status == 200 and doc["status_code"] == code and set(doc) == {"data", "extra", "status_code"}
    assert set(doc["data"]) == {"message", "prompts"} and doc["extra"]["now"] == int((START + 650) * 1000)
    if expected is None:
        assert parse_room_info(body, "1").session.status is LiveStatus.ENDED  # type: ignore[union-attr]
    else:
        with pytest.raises(expected):
            parse_room_info(body, "1")


def test_antibot_is_the_shopee_gateway_challenge() -> None:
    status, body = answer("antibot", "/live.shopee.vn/api/v1/session/1/joinv2", "POST")
    doc = orjson.loads(body)
    assert status == 200 and (doc["error"], doc["action_type"], doc["is_login"]) == (90309999, 2, False)
    with pytest.raises(Blocked):
        parse_joinv2(body)


def test_new_modes_parse_from_the_command_line() -> None:
    rule = parse_rule(f"room_finished:{ROOM_INFO}:count=1")
    assert (rule.mode, rule.match, rule.count) == ("room_finished", ROOM_INFO, 1)


def test_simulate_help_names_every_fault_mode() -> None:
    shown = " ".join(CliRunner().invoke(main, ["simulate", "--help"], terminal_width=200).output.split())
    assert [mode for mode in MODES if f" {mode}" not in shown] == []
