"""Typed aiohttp application keys and the JSON helper shared by the platform route modules."""

from __future__ import annotations

from collections import deque

import orjson
from aiohttp import web

from simulator.clock import SimClock
from simulator.scenario import Scenario

SCENARIO = web.AppKey("scenario", Scenario)
CLOCK = web.AppKey("clock", SimClock)
REQUEST_LOG = web.AppKey("request_log", deque)
FAULTS = web.AppKey("faults", list)


def json_response(payload: object, status: int = 200) -> web.Response:
    """A JSON response serialised with orjson (big room ids stay exact integers)."""
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")
