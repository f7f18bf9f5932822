"""The one shared aiohttp session, and the per-poll fetcher adapters use.

Transport and status problems are translated here into the outcome errors (with the platform's own
block and login markers, `collector.api.check_status`), so a ban page or an empty body never reaches a
parser. Every response a poll received is remembered so the core can keep
the raw body of a poll that failed to parse.
"""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from collector.api import NO_MARKERS, PageMarkers, RawResponse, check_status
from collector.config import HttpSettings
from collector.limits import HostLimiter
from collector.outcomes import HttpError, Outcome, Refused, Transient

MAX_BODY_BYTES = 16 * 1024 * 1024


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


class OutboundRefusedError(OSError):
    """Raised by the resolver for a name that resolves to an address we must not reach."""


def is_internal(address: str) -> bool:
    """An IP literal of a private, loopback, link-local or reserved range, or a localhost name."""
    if address == "localhost" or address.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_unspecified


class OutboundGuard:
    """Requests may go only to configured platform hosts, and to internal addresses only where a
    platform's base URL itself is internal (the simulator, a local proxy)."""

    def __init__(self, base_urls: Iterable[str]) -> None:
        hosts = {(urlsplit(u).hostname or "").lower() for u in base_urls}
        self.allowed = frozenset(hosts)
        self.internal_ok = frozenset(h for h in hosts if is_internal(h))

    def check(self, url: str) -> None:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self.allowed:
            raise Refused(f"request to {host or url!r} refused: not a configured platform host", url=url)
        if is_internal(host) and host not in self.internal_ok:
            raise Refused(f"request to internal address {host} refused", url=url)


class GuardedResolver(AbstractResolver):
    """Refuses names that resolve to internal addresses (DNS rebinding, a hijacked record)."""

    def __init__(self, internal_ok: frozenset[str]) -> None:
        self.inner = DefaultResolver()
        self.internal_ok = internal_ok

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET) -> list:  # type: ignore[override]
        results = await self.inner.resolve(host, port, family)
        if host.lower() not in self.internal_ok:
            for result in results:
                if is_internal(result["host"]):
                    raise OutboundRefusedError(f"{host} resolves to internal address {result['host']}")
        return results

    async def close(self) -> None:
        await self.inner.close()


_REDIRECTS = {301, 302, 303, 307, 308}


async def _read_capped(resp: aiohttp.ClientResponse, url: str) -> bytes:
    """The whole body (a single read returns only what has arrived), refusing absurd sizes."""
    length = resp.content_length
    if length is not None and length <= MAX_BODY_BYTES and "Content-Encoding" not in resp.headers:
        # The parser stops at the declared length, so one read is capped already (a compressed body's
        # length says nothing of what it inflates to). The chunk loop was a few per cent of a poll's CPU.
        return await resp.read()
    body = bytearray()
    async for chunk in resp.content.iter_chunked(256 * 1024):
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise HttpError(f"body over {MAX_BODY_BYTES // (1024 * 1024)} MiB from {url}", url=url)
    return bytes(body)


class HttpClient:
    """Owns the aiohttp session: browser-like headers, timeouts, no shared cookie jar, and the guard."""

    def __init__(self, settings: HttpSettings, guard: OutboundGuard | None = None) -> None:
        self.settings = settings
        self.guard = guard
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpClient:
        headers = {"User-Agent": self.settings.user_agent, **self.settings.headers}
        resolver = GuardedResolver(self.guard.internal_ok) if self.guard else None
        self._session = aiohttp.ClientSession(
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
            connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, resolver=resolver),
            # Cookies stay with their target (sent per request from its secrets), never shared.
            cookie_jar=aiohttp.DummyCookieJar(),
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
        proxy: str | None = None,
    ) -> RawResponse:
        """One request; redirects are followed here so every hop passes the guard."""
        assert self._session is not None, "HttpClient used outside `async with`"
        for _hop in range(self.settings.max_redirects + 1):
            if self.guard is not None:
                self.guard.check(url)
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    headers=headers,
                    json=json,
                    proxy=proxy or self.settings.proxy,
                    allow_redirects=False,
                ) as resp:
                    if resp.status in _REDIRECTS and (location := resp.headers.get("Location")):
                        url, params = urljoin(str(resp.url), location), None
                        if resp.status in (301, 302, 303):
                            method, json = "GET", None
                        continue
                    body = await _read_capped(resp, url)
                    return RawResponse(
                        url=str(resp.url),
                        status=resp.status,
                        content_type=resp.headers.get("Content-Type", ""),
                        body=body,
                        fetched_at=datetime.now(UTC),
                        retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
                    )
            except TimeoutError:
                raise Transient(
                    Outcome.TIMEOUT, f"no answer within {self.settings.timeout:g}s: {url}", url=url
                ) from None
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, OutboundRefusedError) or isinstance(
                    exc.__cause__, OutboundRefusedError
                ):
                    raise Refused(f"request to {url} refused: {exc.os_error}", url=url) from None
                raise Transient(Outcome.NETWORK_ERROR, f"{type(exc).__name__}: {url}", url=url) from None
            except aiohttp.ClientError as exc:
                raise Transient(Outcome.NETWORK_ERROR, f"{type(exc).__name__}: {url}", url=url) from None
        raise HttpError(f"more than {self.settings.max_redirects} redirects from {url}", url=url)


@dataclass(slots=True)
class HttpFetcher:
    """The fetch step handed to an adapter for one poll: polite, retried, guarded, recorded."""

    client: HttpClient
    platform: str = ""
    limiter: HostLimiter | None = None
    proxy: str | None = None
    on_retry: Callable[[], None] = lambda: None
    markers: PageMarkers = NO_MARKERS  # the platform's own block and login pages
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
        # Only transport trouble and 5xx (Transient) are retried; never a parse error, a ban or a 429.
        # The wait after failed attempt n is min(b * 2^(n-1), 8b) + a random jitter up to b. A plain
        # loop: a retry library's state machine cost a tenth of a poll's CPU on the path that never retries.
        settings = self.client.settings
        backoff = settings.retry_backoff
        for attempt in range(1, settings.retries + 2):
            try:
                return await self._once(method, url, **kwargs)
            except Transient:
                if attempt > settings.retries:
                    raise
            self.on_retry()
            await asyncio.sleep(min(backoff * 2 ** (attempt - 1), backoff * 8) + random.uniform(0, backoff))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _once(self, method: str, url: str, **kwargs: Any) -> RawResponse:
        slot = self.limiter.slot(self.platform, url) if self.limiter else nullcontext()
        async with slot:
            raw = await self.client.request(method, url, proxy=self.proxy, **kwargs)
        self.responses.append(raw)
        if self.limiter and raw.retry_after is not None and raw.status in (429, 503):
            self.limiter.block(self.platform, url, raw.retry_after)
        check_status(raw, self.markers)
        return raw
