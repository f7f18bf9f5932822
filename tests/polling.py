"""Polling one target through its kind's spec, as the poller does, for adapter tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collector.api import Adapter, BrowserFetch, HttpFetch, PollContext, PollResult, TargetConfig


async def poll_kind(
    adapter: Adapter,
    target: TargetConfig,
    base_urls: Mapping[str, str],
    http: HttpFetch,
    browser: BrowserFetch | None = None,
    state: Any = None,
) -> PollResult:
    """One poll; pass the same `state` (from the kind's `new_state`) to poll the target again."""
    spec = adapter.kinds[target.kind]
    ctx = PollContext(target, base_urls, http, browser, spec.new_state() if state is None else state)
    return await spec.poll(ctx)
