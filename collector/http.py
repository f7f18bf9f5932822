"""The one shared aiohttp session, and the per-poll fetcher adapters use.

Transport and status problems are translated here into the outcome errors, so a ban page or an
empty body never reaches a parser. Every response a poll received is remembered so the core can keep
the raw body of a poll that failed to parse.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from collector.config import HttpSettings
from collector.outcomes import Blocked, HttpError, Outcome, RateLimited, Transient

MAX_BODY_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RawResponse:
    url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    retry_after: float | None = None


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds from now; it may be a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpClient:
    """Owns the aiohttp session: browser-like headers, timeouts and an optional proxy."""

    def __init__(self, settings: HttpSettings) -> None:
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        headers = {"User-Agent": self.settings.user_agent, **self.settings.headers}
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
    ) -> RawResponse:
        assert self._session is not None, "HttpClient used outside `async with`"
        try:
            async with self._session.request(
                method, url, params=params, headers=headers, json=json, proxy=self.settings.proxy
            ) as resp:
                body = await resp.content.read(MAX_BODY_BYTES)
                return RawResponse(
                    url=str(resp.url),
                    status=resp.status,
                    content_type=resp.headers.get("Content-Type", ""),
                    body=body,
                    fetched_at=datetime.now(UTC),
                    retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                )
        except TimeoutError:
            raise Transient(Outcome.TIMEOUT, f"no answer within {self.settings.timeout:g}s: {url}") from None
        except aiohttp.ClientError as exc:
            raise Transient(Outcome.NETWORK_ERROR, f"{type(exc).__name__}: {url}") from None


def check_status(raw: RawResponse) -> None:
    """Raise the outcome error a non-usable response stands for."""
    if raw.status == 429 or (raw.status == 503 and raw.retry_after is not None):
        raise RateLimited(f"HTTP {raw.status} from {raw.url}", retry_after=raw.retry_after)
    if raw.status == 403:
        raise Blocked(f"HTTP 403 from {raw.url}")
    if raw.status >= 500:
        raise Transient(Outcome.HTTP_ERROR, f"HTTP {raw.status} from {raw.url}")
    if raw.status >= 400:
        raise HttpError(f"HTTP {raw.status} from {raw.url}")
    if not raw.body.strip():
        # Platforms answer bot traffic with an empty 200 (platforms.md 2.1): a ban, not a layout change.
        raise Blocked(f"empty body from {raw.url}")


@dataclass(slots=True)
class HttpFetcher:
    """The fetch step handed to an adapter for one poll."""

    client: HttpClient
    responses: list[RawResponse] = field(default_factory=list)

    async def get(
        self, url: str, *, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> RawResponse:
        return await self._send("GET", url, params=params, headers=headers)

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse:
        return await self._send("POST", url, params=params, headers=headers, json=json)

    async def _send(self, method: str, url: str, **kwargs: Any) -> RawResponse:
        raw = await self.client.request(method, url, **kwargs)
        self.responses.append(raw)
        check_status(raw)
        return raw
