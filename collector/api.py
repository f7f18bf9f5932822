"""The adapter API: all that a platform adapter (`scrapers/`) may use of the core, and nothing more.

A leaf module: it imports only the outcome errors, the state codec and the data vocabulary, so loading it
(or a configuration, which needs the kind specs) never imports a fetcher, the store or any platform.

An adapter declares its page kinds in a table of `KindSpec`s; each kind names its target fields, checks
them at load (so `check-config` reports every mistake with its key path), creates the typed state it
keeps between polls of one target (stored, so a restart or another replica carries on), and polls
through the fetchers in its `PollContext`.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from collector.outcomes import (
    Blocked,
    HttpError,
    LoginWall,
    NotFound,
    Outcome,
    ParseFailure,
    PollError,
    RateLimited,
    Refused,
    Transient,
)
from collector.state_codec import MEMORY_ONLY, StateShapeError, codec_for
from schemas.types import ParseResult, Sample, SessionObservation

__all__ = [
    "MEMORY_ONLY",
    "NO_MARKERS",
    "Adapter",
    "Blocked",
    "BrowserCapture",
    "BrowserFetch",
    "FieldProblem",
    "HistoryGap",
    "HistoryPoint",
    "HttpError",
    "HttpFetch",
    "KindSpec",
    "LoginWall",
    "NotFound",
    "Outcome",
    "PageMarkers",
    "ParseFailure",
    "PollContext",
    "PollError",
    "PollRecord",
    "PollResult",
    "RateLimited",
    "RawResponse",
    "Refused",
    "RevealsSecret",
    "StateShapeError",
    "TargetConfig",
    "Transient",
    "check_status",
]


@dataclass(frozen=True, slots=True)
class RawResponse:
    url: str
    status: int
    content_type: str
    body: bytes
    fetched_at: datetime
    retry_after: float | None = None


@dataclass(slots=True)
class PollRecord:
    """Everything one poll produced, as the writer stores it in one batch with others."""

    target: str
    observed_at: datetime
    outcome: Outcome
    samples: list[Sample] = field(default_factory=list)
    session: SessionObservation | None = None
    snapshots: list[tuple[RawResponse, str | None]] = field(default_factory=list)
    next_due_at: datetime | None = None
    detail: str | None = None  # why a poll failed, for `collector status`
    credentials_expire_at: datetime | None = None  # the target's API token expiry, where known
    # The target's stored state after this poll (`collector.target_state`), only when it changed.
    state: dict[str, Any] | None = None


class RevealsSecret(Protocol):
    source: str

    def reveal(self) -> str: ...


@dataclass(frozen=True, slots=True)
class TargetConfig:
    """One configured target as adapters see it: common fields plus the fields of its kind."""

    name: str
    platform: str
    kind: str
    interval: float
    params: Mapping[str, str] = field(default_factory=dict)
    campaign: str | None = None
    enabled: bool = True
    secrets: Mapping[str, RevealsSecret] = field(default_factory=dict)
    keep_every_body: bool = False  # keep every raw body, not one in N good ones (for reprocessing)
    scheduled_start: datetime | None = None  # when the campaign expects this target to go live


@dataclass(frozen=True, slots=True)
class PageMarkers:
    """Byte patterns no real content page of a platform carries: block/captcha pages and login walls.

    The core scans an HTML answer for them before any parser sees it. Patterns, not literal strings,
    so attribute quoting and spacing (`id="login_form"`, `id='login_form'`, `id=login_form`) do not
    decide what a page is.
    """

    blocked: tuple[re.Pattern[bytes], ...] = ()
    login: tuple[re.Pattern[bytes], ...] = ()

    def classify(self, head: bytes, url: str) -> PollError | None:
        for pattern in self.blocked:
            if match := pattern.search(head):
                return Blocked(f"block page ({_shown(match[0])}) from {url}", url=url)
        for pattern in self.login:
            if match := pattern.search(head):
                return LoginWall(f"login wall ({_shown(match[0])}) from {url}", url=url)
        return None


NO_MARKERS = PageMarkers()


def _shown(marker: bytes) -> str:
    return repr(marker[:60].decode(errors="replace"))


MARKER_SCAN = 512 * 1024  # block and login pages put their markers well inside this


def check_status(raw: RawResponse, markers: PageMarkers = NO_MARKERS) -> None:
    """Raise the outcome error a response stands for when it is not usable content."""
    url, status = raw.url, raw.status
    if status == 429 or (status == 503 and raw.retry_after is not None):
        raise RateLimited(f"HTTP {status} from {url}", retry_after=raw.retry_after, url=url, status=status)
    if status == 403:
        raise Blocked(f"HTTP 403 from {url}", url=url, status=status)
    if status >= 500:
        raise Transient(Outcome.HTTP_ERROR, f"HTTP {status} from {url}", url=url, status=status)
    if status >= 400:
        raise HttpError(f"HTTP {status} from {url}", url=url, status=status)
    if not raw.body.strip():
        # Platforms answer bot traffic with an empty 200 (platforms.md 2.1): a ban, not a layout change.
        raise Blocked(f"empty body from {url}", url=url, status=status)
    path = urlsplit(url).path
    if path.startswith(("/login", "/checkpoint")) or path.endswith(("/login", "/login/")):
        raise LoginWall(f"redirected to a login page: {url}", url=url, status=status)
    if "json" in raw.content_type:
        return  # an API answer; a ban served in its place comes as HTML
    if error := markers.classify(raw.body[:MARKER_SCAN], url):
        error.status = status
        raise error


class HttpFetch(Protocol):
    """The polite, retried, guarded HTTP step of one poll; every response is kept in `responses`."""

    responses: list[RawResponse]

    async def get(
        self, url: str, *, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> RawResponse: ...

    async def post(
        self,
        url: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> RawResponse: ...


@dataclass(frozen=True, slots=True)
class BrowserCapture:
    page: RawResponse
    responses: dict[str, RawResponse]
    # Wanted calls the page made that failed without an answer (reset, refused), with the reason.
    failed: dict[str, str] = field(default_factory=dict)


class BrowserFetch(Protocol):
    """The Chromium step of one poll: load a page and capture the JSON calls its own scripts make."""

    async def capture(
        self,
        url: str,
        *,
        wait_for: Sequence[str] = (),
        click: str | None = None,
        cookies: str | None = None,
        timeout: float | None = None,
    ) -> BrowserCapture: ...


S = TypeVar("S")


@dataclass(slots=True)
class PollContext(Generic[S]):
    """Everything one poll may use; `state` is the target's own, kept between its polls."""

    target: TargetConfig
    base_urls: Mapping[str, str]
    http: HttpFetch
    browser: BrowserFetch | None = None
    state: S = None  # type: ignore[assignment]


@dataclass(slots=True)
class PollResult:
    """A poll that reached the platform and understood its answer."""

    outcome: Outcome
    parsed: ParseResult
    credentials_expire_at: datetime | None = None  # when the target's token runs out, where known


@dataclass(frozen=True, slots=True)
class HistoryPoint:
    """A past value set with its own time (a minute of a finished broadcast), for `history`."""

    parsed: ParseResult
    observed_at: datetime


@dataclass(frozen=True, slots=True)
class HistoryGap:
    """A window the platform will not fill (its endpoint fails): recorded as a gap, never invented."""

    started_at: datetime
    ended_at: datetime
    detail: str


@dataclass(frozen=True, slots=True)
class FieldProblem:
    """A target field that cannot work, found when the configuration is loaded."""

    field: str
    problem: str


def _no_state() -> None:
    return None


def _no_problems(_params: Mapping[str, str]) -> Iterable[FieldProblem]:
    return ()


def _nothing_to_reparse(_raw: RawResponse) -> ParseResult | None:
    return None


@dataclass(frozen=True, slots=True)
class KindSpec:
    """One page kind: its target fields, how they are checked, its per-target state and its poll."""

    poll: Callable[[PollContext[Any]], Awaitable[PollResult]]
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    # Secrets are given as `<name>_env` or `<name>_file` in the target table, never inline.
    required_secrets: tuple[str, ...] = ()
    optional_secrets: tuple[str, ...] = ()
    # True, or a predicate over the target's fields for kinds where the browser is optional.
    uses_browser: bool | Callable[[Mapping[str, str]], bool] = False
    check: Callable[[Mapping[str, str]], Iterable[FieldProblem]] = _no_problems
    new_state: Callable[[], Any] = _no_state
    # A stored body back to what it says, with today's parsers (`backfill reprocess`); None for a body
    # that says nothing on its own (a lookup step, a list that needs its poll's other answers).
    reparse: Callable[[RawResponse], ParseResult | None] = _nothing_to_reparse
    # What the platform still holds after the fact (`backfill history`): final counters of the sessions
    # with these keys that the target saw (or, for a dashboard, of the sessions it lists itself).
    # It may also yield HistoryPoints (values with their own time) and HistoryGaps.
    history: (
        Callable[[PollContext[Any], Sequence[str]], AsyncIterator[ParseResult | HistoryPoint | HistoryGap]]
        | None
    ) = None
    history_lists_sessions: bool = False  # True: `history` lists the sessions itself and takes no keys
    # Seconds between polls when the target sets no `interval` (None: the collector's default); for
    # platforms that punish fast pollers (Lazada's storefront) or counters that move slowly.
    default_interval: float | None = None
    summary: str = ""
    # Raised when the meaning of the kind's stored state changes while its shape stays the same: a
    # stored state of another version is not loaded (its target starts fresh). A change of shape
    # needs no bump; the codec refuses it by itself.
    state_version: int = 1

    def dump_state(self, state: Any) -> Any:
        """The kind's state as JSON types (None for a kind without state)."""
        return None if state is None else codec_for(type(state)).dump(state)

    def load_state(self, data: Any) -> Any:
        """A dumped state back as the kind's state; StateShapeError when it does not fit the class."""
        fresh = self.new_state()
        if fresh is None:
            if data is not None:
                raise StateShapeError("", "this kind keeps no state")
            return None
        return codec_for(type(fresh)).load(data)

    def needs_browser(self, params: Mapping[str, str]) -> bool:
        return self.uses_browser(params) if callable(self.uses_browser) else self.uses_browser


class Adapter(Protocol):
    name: str
    kinds: Mapping[str, KindSpec]
    default_base_urls: Mapping[str, str]
    markers: PageMarkers
