"""/healthz and /readyz answer 200 "ok" or 503 with the problem, over real HTTP."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer

from collector.metrics import LiveState, SelfMetrics, metrics_app


async def answers(health: str | None, readiness: str | None) -> list[tuple[int, str]]:
    app = metrics_app(SelfMetrics(LiveState([])), lambda: health, lambda: readiness)
    async with TestClient(TestServer(app)) as client:
        seen = []
        for path in ("/healthz", "/readyz"):
            response = await client.get(path)
            seen.append((response.status, await response.text()))
        return seen


async def test_probes_say_ok_when_nothing_is_wrong() -> None:
    assert await answers(None, None) == [(200, "ok\n"), (200, "ok\n")]


async def test_probes_name_the_problem_with_503() -> None:
    assert await answers("scheduler loop stalled", "database unreachable (3 failed writes) and no spool") == [
        (503, "scheduler loop stalled\n"),
        (503, "database unreachable (3 failed writes) and no spool\n"),
    ]
