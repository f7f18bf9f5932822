"""TikTok hashtag counters: the `hashtag` kind (shapes: shared/platforms.md sections 2.2 and 6).

Two sources, best first:
1. `api/challenge/detail/?challengeName=` JSON: `challengeInfo.stats{videoCount,viewCount}` (ints) and
   `statsV2` (the same as strings). The call must be signed (`X-Bogus`, `msToken`); unsigned callers get
   an empty 200. So the adapter never makes it itself: with a browser it loads the tag page, whose own
   JavaScript signs and makes the call, and keeps that response.
2. The tag page's server-rendered header `[data-e2e="challenge-vvcount"]`: the newer markup
   (`title="posts"`, "1.1M posts") gives hashtag_posts only, the older (`title="views"`,
   `<strong>12.3B</strong> views`) hashtag_views only; plus the legacy `SIGI_STATE.ChallengePage
   .challengeInfo` when a page still has it. This is the path without a browser (plain HTTP), and the
   fallback when the browser did not capture usable JSON.

Tolerated, where platforms.md marks the shape [U]:
- `statsV2` is preferred over `stats` when both have a count (TikTok-Api does the same); a count that
  only one of them has, or only one of them can be read, is taken from that one. `videoCount: 0` beside
  a `viewCount` is a legal reading (drawrowfly/tiktok-scraper#375).
- "Not found": `statusCode` 10205 or a `statusMsg` saying "not found"/"not exist", or a
  `challengeInfo` without a `challenge` (davidteather/TikTok-Api#373). Any other non-zero `statusCode`
  without a challenge is treated as a refusal (captcha/verify codes) -> Blocked.
- Header words in English or Vietnamese ("views"/"lượt xem", "posts"/"videos"/"bài đăng"); the
  `title` attribute decides when present. The not-found page is recognised by "Couldn't find this
  hashtag" (any apostrophe) or "Không tìm thấy hashtag" in its visible text (scripts ignored).
- A tag page with neither header, legacy state nor not-found text is a layout change when it still
  looks like a tag page (`challenge-title`, rehydration data), else a block page as for the live page.
"""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote, unquote

from selectolax.lexbor import LexborHTMLParser

from collector.api import (
    Blocked,
    BrowserFetch,
    FieldProblem,
    NotFound,
    Outcome,
    ParseFailure,
    PollContext,
    PollError,
    PollResult,
    RateLimited,
    RawResponse,
)
from schemas.types import Metric, ParseResult, Reading
from scrapers.extract import first, load_json, script_json
from scrapers.normalise import NumberFormatError, parse_count
from scrapers.tiktok.common import brief, classify_page_without_data, referer

log = logging.getLogger(__name__)

DETAIL_PATH = "/api/challenge/detail"
NOT_FOUND_CODES = frozenset({10205})  # [U] the code the simulator and several clients use
_NOT_FOUND_WORDS = ("not found", "not exist", "doesn't exist", "does not exist")
# (metric, key in stats/statsV2)
_STAT_KEYS = ((Metric.HASHTAG_VIEWS, "viewCount"), (Metric.HASHTAG_POSTS, "videoCount"))
_VIEW_WORDS = ("view", "lượt xem")  # matched against NFC-normalised, lower-cased text
_POST_WORDS = ("post", "video", "bài đăng", "bài viết")
_NOT_FOUND_TEXT = ("find this hashtag", "không tìm thấy hashtag")
_TAG_PAGE_MARKERS = (b"challenge-title", b"__UNIVERSAL_DATA_FOR_REHYDRATION__")


def normalise_tag(raw: str) -> str:
    """The tag as TikTok's URL wants it, from `#Tag`, `tag` or a tag page URL (`…/tag/tag?lang=vi`):
    no '#', no surrounding space, lower case (tags ignore case)."""
    text = raw.strip()
    if "/tag/" in text:
        text = unquote(text.split("/tag/", 1)[1].split("?")[0].split("#")[0].strip("/"))
    return text.lstrip("#").strip().lower()


def _count(raw: object, metric: Metric) -> int:
    """One counter value (int, or display text like "1.1M posts") as a non-negative int."""
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        # Not handed to parse_count: its error message reprs the value, which fails for deep nesting.
        raise ParseFailure("bad_number", f"{metric}: a {type(raw).__name__}, not a number")
    try:
        value = parse_count(raw)
    except NumberFormatError as exc:
        raise ParseFailure("bad_number", f"{metric}: {exc}") from None
    if value < 0 or value > 10**15:  # nothing has a quadrillion views; float() must stay exact
        raise ParseFailure("bad_number", f"{metric}: {value} is not a plausible count")
    return value


def _stats_readings(info: dict[str, Any]) -> list[Reading]:
    """hashtag_views/posts from `challengeInfo`: statsV2 first, then stats; absent counts are skipped."""
    readings = []
    for metric, key in _STAT_KEYS:
        error: ParseFailure | None = None
        for section in ("statsV2", "stats"):
            raw = first(info, (section, key))
            if raw is None:
                continue
            try:
                readings.append(Reading(metric, float(_count(raw, metric))))
                break
            except ParseFailure as exc:
                error = error or exc
        else:
            if error is not None:
                raise error
    return readings


def _has_challenge(info: dict[str, Any]) -> bool:
    """Whether `challengeInfo` names a challenge; a missing or empty one means no such tag (#373)."""
    challenge = info.get("challenge")
    if challenge is None or challenge == {}:
        return False
    if not isinstance(challenge, dict):
        raise ParseFailure("unexpected_shape", f"challengeInfo.challenge is a {type(challenge).__name__}")
    return True


def _says_not_found(message: object) -> bool:
    return isinstance(message, str) and any(word in message.lower() for word in _NOT_FOUND_WORDS)


def parse_challenge_detail(body: bytes) -> ParseResult:
    """`api/challenge/detail` JSON -> hashtag_views and hashtag_posts."""
    if not body.strip():
        raise Blocked("empty challenge/detail body (TikTok's answer to unsigned or bot traffic)")
    doc = load_json(body)
    if not isinstance(doc, dict):
        raise ParseFailure("unexpected_shape", "challenge/detail is not an object")
    code = doc.get("statusCode", doc.get("status_code"))
    if (isinstance(code, int) and code in NOT_FOUND_CODES) or _says_not_found(
        doc.get("statusMsg", doc.get("status_msg"))
    ):
        raise NotFound(f"hashtag not found (statusCode {brief(code)})")
    info = doc.get("challengeInfo")
    if info is not None and not isinstance(info, dict):
        raise ParseFailure("unexpected_shape", "challengeInfo is not an object")
    if info is None or not _has_challenge(info):
        if code in (0, None):
            raise NotFound("challenge/detail without a challenge: the hashtag does not exist")
        raise Blocked(f"challenge/detail refused: statusCode {brief(code)} and no challenge")
    readings = _stats_readings(info)
    if not readings:
        raise ParseFailure("missing_keys", "challengeInfo without stats/statsV2 counts")
    return ParseResult(readings)


def _header_metric(text: str) -> Metric | None:
    text = unicodedata.normalize("NFC", text).lower()
    if any(word in text for word in _VIEW_WORDS):
        return Metric.HASHTAG_VIEWS
    if any(word in text for word in _POST_WORDS):
        return Metric.HASHTAG_POSTS
    return None


def _header_readings(body: bytes) -> list[Reading]:
    """The counts in the `challenge-vvcount` header(s); none when the page has no such element."""
    if b"challenge-vvcount" not in body:
        return []  # skip building a DOM for pages that cannot have the header
    tree = LexborHTMLParser(body.decode("utf-8", "replace"))
    readings = []
    for node in tree.css('[data-e2e="challenge-vvcount"]'):
        text = " ".join(node.text(separator=" ").split())
        metric = _header_metric(node.attributes.get("title") or "") or _header_metric(text)
        if metric is None:
            raise ParseFailure(
                "unknown_header", f"challenge-vvcount is neither views nor posts: {text[:60]!r}"
            )
        strong = node.css_first("strong")
        number = strong.text() if strong is not None else text
        readings.append(Reading(metric, float(_count(number, metric))))
    return readings


def _legacy_state(body: bytes) -> tuple[list[Reading], bool]:
    """Counts from `SIGI_STATE.ChallengePage.challengeInfo`, and whether that state says "no such tag"."""
    state = script_json(body, b'id="SIGI_STATE"')
    page = first(state, ("ChallengePage",)) if isinstance(state, dict) else None
    if not isinstance(page, dict):
        return [], False
    info = page.get("challengeInfo")
    if info is not None and not isinstance(info, dict):
        raise ParseFailure("unexpected_shape", "ChallengePage.challengeInfo is not an object")
    if info is None or not _has_challenge(info):
        return [], True
    readings = _stats_readings(info)
    if not readings:
        raise ParseFailure("missing_keys", "ChallengePage.challengeInfo without stats/statsV2 counts")
    return readings, False


def _shows_not_found(body: bytes) -> bool:
    """The not-found text in the page's visible text (a script's i18n table does not count)."""
    if b"hashtag" not in body.lower():
        return False  # both markers say "hashtag": most block pages need no DOM
    tree = LexborHTMLParser(body.decode("utf-8", "replace"))
    tree.strip_tags(["script", "style", "template"])
    visible = " ".join(
        unicodedata.normalize("NFC", tree.text(separator=" ")).lower().replace("’", "'").split()
    )
    return any(marker in visible for marker in _NOT_FOUND_TEXT)


def parse_tag_page(body: bytes) -> ParseResult:
    """`/tag/{name}` HTML -> what its header (and legacy SIGI_STATE) shows."""
    problems: list[PollError] = []
    found: dict[Metric, Reading] = {}
    state_says_missing = False
    # The legacy state has both counts, so it wins over the header's one abbreviated count.
    try:
        readings, state_says_missing = _legacy_state(body)
        found.update((r.metric, r) for r in readings)
    except ParseFailure as exc:
        problems.append(exc)
    try:
        for reading in _header_readings(body):
            found.setdefault(reading.metric, reading)
    except ParseFailure as exc:
        problems.append(exc)
    if found:
        return ParseResult(list(found.values()))
    if state_says_missing or _shows_not_found(body):
        raise NotFound("TikTok has no such hashtag")
    if problems:
        raise problems[0]
    if any(marker in body for marker in _TAG_PAGE_MARKERS):
        raise ParseFailure("missing_header", "tag page without challenge-vvcount")
    raise classify_page_without_data(body, "tag page without its header")


async def _via_browser(browser: BrowserFetch, url: str) -> ParseResult | None:
    """Load the tag page in the browser: its signed challenge/detail JSON, else its HTML; None if neither."""
    try:
        capture = await browser.capture(url, wait_for=(DETAIL_PATH,))
    except RateLimited:
        raise  # plain HTTP to the same site would only make it worse
    except PollError as exc:
        log.debug("browser could not load %s (%s); trying plain HTTP", url, exc.detail)
        return None
    detail = capture.responses.get(DETAIL_PATH)
    if detail is not None and detail.status < 400:
        try:
            return parse_challenge_detail(detail.body)
        except NotFound:
            raise
        except PollError as exc:
            log.debug("challenge/detail unusable for %s (%s); reading the page", url, exc.detail)
    try:
        return parse_tag_page(capture.page.body)
    except NotFound:
        raise
    except PollError as exc:
        log.debug("browser page unusable for %s (%s); trying plain HTTP", url, exc.detail)
        return None


def reparse_hashtag(raw: RawResponse) -> ParseResult | None:
    if DETAIL_PATH in raw.url:
        return parse_challenge_detail(raw.body)
    if "/tag/" in raw.url:
        return parse_tag_page(raw.body)
    return None


def check_hashtag(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    if "tag" in params and not normalise_tag(params["tag"]):
        yield FieldProblem("tag", f"{params['tag'][:80]!r} is not a hashtag")


async def poll_hashtag(ctx: PollContext[None]) -> PollResult:
    """One poll of a `hashtag` target: views and posts now; hashtags have no session."""
    tag = normalise_tag(ctx.target.params["tag"])
    if not tag:
        raise NotFound(f"{ctx.target.params['tag']!r} is not a hashtag")
    web = ctx.base_urls["web"]
    url = f"{web}/tag/{quote(tag, safe='')}"
    if ctx.browser is not None:
        parsed = await _via_browser(ctx.browser, url)
        if parsed is not None:
            return PollResult(Outcome.OK, parsed)
    raw = await ctx.http.get(url, headers=referer(web))
    return PollResult(Outcome.OK, parse_tag_page(raw.body))
