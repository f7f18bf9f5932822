"""Facebook live videos (shapes: shared/platforms.md 4.1 and 6).

A target names a `video_id` (a numeric id or any documented video URL) and/or a `page` slug. With only
a page, `{web}/{page}/live/` is fetched: when live it redirects to the broadcast, whose page is parsed
at once; otherwise the id comes from a live node in the page JSON, or the poll is NOT_LIVE. The first
poll after a discovered broadcast stops reads its video page once more: the replay keeps the counts.

Counters come from the Relay JSON in `<script type="application/json" data-sjs>` blocks, found by key
search (the real nesting is deeper than platforms.md's skeleton and changes). The video node is the
first object, outside any `feedback`, with a non-null video key (`liveViewerCount`, `broadcast_status`,
`live_status`, `is_live_streaming`, `video_view_count`, `viewCount`): a key that is present but null (a
photo post's `"video_view_count": null`) does not make a video. Old pages fall back to JSON-LD
`VideoObject.interactionStatistic`.

What real pages fetched signed out show (shared/real-captures/facebook, 2026-07-29):
- every page carries the log-in form query (`useCometLogInFormQuery`) and often the blue bar's
  `<form id="login_form">`, content or not. Neither is a login wall: a login wall is the page refusing
  content, i.e. a redirect to `/login` or `/checkpoint`, or a page titled as the log-in page
  ("Log in to Facebook", "Facebook – log in or sign up", "Đăng nhập hoặc đăng ký"; [U] titles, from the
  UI). A page without a video node that is neither is NOT_LIVE (`/live/`) or a parse failure (a video);
- the security interstitial ("blocked by our security systems", HTTP 200, with the login form too) is
  Blocked;
- feedback objects carry an `id` (`base64("feedback:<post id>")`), and a reel splits its feedback over
  two objects with that id in different parts of a block (reactions as `likers`/`unified_reactors` in one,
  `total_comment_count` and `share_count_reduced` in the other), its video named by `video.id` beside
  the second. All objects with the id of a feedback that belongs to the video are merged: a feedback
  beside the node's id or `video.id`, or naming it as `associated_video` (where the watch page's
  `video_view_count` sits). The watch page and the reel of one video give the same counts (the watch page
  shows no share count, the reel no view count);
- `live_status: "NEVER_LIVE"`, or `is_video_broadcast: false` while not streaming, is a video that is not
  a broadcast: its counts are read, with no live session, status unknown, outcome NOT_LIVE;
- a video that is not running (ended, never live) has no concurrent viewers: `liveViewerCount: 0` there
  is no reading.

Tolerated [U] shapes (unverified in platforms.md, or not covered by it):
- the node split over several objects or blocks: objects with the node's id (or none) are merged, and
  a `feedback` object elsewhere in the node's block stands in for a missing `node.feedback`;
- counts as ints, digit strings ("1,234", "12.345") or compact text ("2,3K", "1.4K", "1,2 Tr");
- `viewCount:"1,234"` as an unquoted JavaScript key outside the JSON (yt-dlp's regex);
- `broadcast_status` `SCHEDULED*` is scheduled; `is_live_streaming:false` with `is_video_broadcast`
  is ended; unknown values are UNKNOWN (compared case-insensitively);
- a redirect to `/checkpoint` is a login wall even if the page is a captcha (a human must repair
  the session); the Vietnamese block/captcha wording and "content isn't available" (-> NotFound)
  are guessed from the UI;
- a live broadcast page signed out was never captured: platforms.md (OmniDL) says logged-out HTML
  carries no live markers, in which case a `page` target without cookies reads NOT_LIVE while the page
  is live; a `video_id` target or cookies avoid that;
- a junk data-sjs block among good ones is skipped; it is `bad_json` only if no video node is found.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import orjson

from collector.api import (
    Blocked,
    FieldProblem,
    KindSpec,
    LoginWall,
    NotFound,
    Outcome,
    PageMarkers,
    ParseFailure,
    PollContext,
    PollError,
    PollResult,
    RawResponse,
)
from schemas.types import LIVE_STATUS_CODE, LiveStatus, Metric, ParseResult, Reading, SessionObservation
from scrapers.extract import MetricSpec, first, readings_from

SJS_OPEN = re.compile(rb"<script\b[^>]*\bdata-sjs\b[^>]*>")
LD_OPEN = re.compile(rb"<script\b[^>]*\bapplication/ld\+json\b[^>]*>")
SCRIPT_CLOSE = b"</script>"
JS_VIEW_COUNT = re.compile(rb"\bviewCount\"?\s*:\s*[\"']([0-9][0-9.,]*)[\"']")
LIVE_MARKER = re.compile(rb'"(?:is_live_streaming":true|broadcast_status":"LIVE"|live_status":"LIVE")')
ID_IN_BODY = (re.compile(rb'"broadcast_id":"([0-9]+)"'), re.compile(rb'"video_id":"([0-9]+)"'))
VIDEOS_IN_URL = re.compile(r"/videos/(?:[^/?#]+/)*?([0-9]+)(?:[/?#]|$)")

VIDEO_KEYS = ("liveViewerCount", "broadcast_status", "live_status", "is_live_streaming", "video_view_count", "viewCount")  # fmt: skip
STATUS_KEYS = ("broadcast_status", "live_status", "is_live_streaming")
FEEDBACK_KEYS = ("reaction_count", "i18n_reaction_count", "likers", "total_comment_count", "comment_rendering_instance", "share_count", "i18n_share_count", "share_count_reduced")  # fmt: skip
ID_KEYS = ("videoId", "video_id", "id")
RELEVANT = re.compile(b'"(?:feedback|' + b"|".join(k.encode() for k in VIDEO_KEYS) + b')"')
RUNNING = (LiveStatus.LIVE, LiveStatus.PAUSED)
NOT_A_BROADCAST = "NEVER_LIVE"

BLOCKED_MARKERS = tuple(re.compile(re.escape(m)) for m in (
    b"Security Check Required", b"Temporarily Blocked",  # "You're", "You’re", "You&#039;re" alike
    b"blocked by our security systems",  # the security interstitial (real capture dir_blocked.html)
    "Yêu cầu kiểm tra bảo mật".encode(), "tạm thời bị chặn".encode(),  # [U] Vietnamese UI
))  # fmt: skip
# The log-in page's own title [U]; never the login form or its query, which signed-out content pages carry.
LOGIN_MARKERS = (
    re.compile(rb"<title[^>]*>[^<]{0,40}(?:log ?in ?to Facebook|log in or sign up)", re.IGNORECASE),
    re.compile("<title[^>]*>[^<]{0,40}Đăng nhập hoặc đăng ký".encode()),
)
MARKERS = PageMarkers(blocked=BLOCKED_MARKERS, login=LOGIN_MARKERS)
UNAVAILABLE_MARKERS = (
    b"content isn't available", "content isn’t available".encode(), b"content isn&#039;t available",
    b"video isn't available", "Nội dung này hiện không".encode(),  # [U]
)  # fmt: skip
LOGIN_PATH_SEGMENTS = frozenset({"login", "login.php", "checkpoint"})

N, F = ("node",), ("feedback",)
VIDEO_METRICS = (
    MetricSpec(Metric.VIEWERS, ((*N, "liveViewerCount"),)),
    MetricSpec(Metric.VIEWS, ((*N, "video_view_count"), (*N, "viewCount"), (*F, "video_view_count"))),
    MetricSpec(Metric.LIKES, ((*F, "reaction_count", "count"), (*F, "i18n_reaction_count"), (*F, "likers", "count"))),
    MetricSpec(Metric.COMMENTS, ((*F, "total_comment_count"), (*F, "comment_rendering_instance", "comments", "total_count"))),
    MetricSpec(Metric.SHARES, ((*F, "share_count", "count"), (*F, "i18n_share_count"), (*F, "share_count_reduced"))),
)  # fmt: skip
VIEWS_TEXT = MetricSpec(Metric.VIEWS, (("viewCount",),))
LD_METRICS = (
    MetricSpec(Metric.VIEWS, (("WatchAction",),)), MetricSpec(Metric.LIKES, (("LikeAction",),)),
    MetricSpec(Metric.COMMENTS, (("CommentAction",),)), MetricSpec(Metric.SHARES, (("ShareAction",),)),
)  # fmt: skip

# A plain client gets the login page unless it looks like a browser navigation (platforms.md 4.1).
BROWSER_HEADERS = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8",
    "Sec-Fetch-Dest": "document", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "none",
    "Sec-Fetch-User": "?1", "Sec-Ch-Ua-Mobile": "?0", "Sec-Ch-Ua-Platform": '"Windows"',
    "Upgrade-Insecure-Requests": "1", "DNT": "1",
}  # fmt: skip


def _id(value: object) -> str | None:
    """A numeric id as a string; only plain ASCII digits count (not "²", not "0")."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None
    text = str(value).strip() if isinstance(value, str) or abs(value) < 10**30 else ""
    return text if text.isascii() and text.isdigit() and text.strip("0") and len(text) <= 30 else None


def video_id_from(text: str) -> str | None:
    """The numeric video id in an id or a video URL (`/{page}/videos/{id}`, `/watch/live/?v=`,
    `/watch/?v=`, `/video.php?v=`, `/reel/{id}`, `plugins/video.php?href=`; any *.facebook.com host)."""
    if not isinstance(text, str):
        return None
    text = text.strip()
    if (plain := _id(text)) is not None:
        return plain
    if "://" not in text:
        text = "https://" + text.lstrip("/")
    try:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if host != "facebook.com" and not host.endswith(".facebook.com"):
        return None
    query = parse_qs(parts.query)
    segments = [s for s in parts.path.split("/") if s]
    if segments[-1:] == ["video.php"] or segments[:1] == ["watch"]:
        if "v" in query:
            return _id(query["v"][0])
        if "href" in query and segments[-1:] == ["video.php"]:
            return video_id_from(query["href"][0])
        return None
    if "reel" in segments[:-1]:
        return _id(segments[segments.index("reel") + 1])
    return url_video_id(text)


def url_video_id(url: str) -> str | None:
    """The id in a `/videos/{id}` path of any host (a redirect's final URL)."""
    try:
        path = urlsplit(url).path
    except ValueError:
        return None
    match = VIDEOS_IN_URL.search(path)
    return _id(match[1]) if match else None


def page_slug(text: str) -> str:
    """`laichau.ocop` from a slug or a page URL."""
    text = text.strip()
    if "facebook.com/" in text:
        text = text.split("facebook.com/", 1)[1]
    return text.strip("/").split("/")[0].split("?")[0].split("#")[0]


def video_status(node: dict[str, Any]) -> LiveStatus:
    """platforms.md 4.1: LIVE live, LIVE+PAUSED paused, LIVE_STOPPED live, VOD_READY/WAS_LIVE ended."""
    broadcast, live = (v.upper() if isinstance(v := node.get(k), str) else "" for k in STATUS_KEYS[:2])
    if broadcast == "VOD_READY" or live == "WAS_LIVE":
        return LiveStatus.ENDED
    if live == "PAUSED":
        return LiveStatus.PAUSED
    if broadcast in ("LIVE", "LIVE_STOPPED") or live == "LIVE":
        return LiveStatus.LIVE
    if broadcast.startswith("SCHEDULED") or live.startswith("SCHEDULED"):
        return LiveStatus.SCHEDULED
    streaming = node.get("is_live_streaming")
    if streaming is True:
        return LiveStatus.LIVE
    if streaming is False and node.get("is_video_broadcast") is True:
        return LiveStatus.ENDED
    return LiveStatus.UNKNOWN


def _node_id(node: dict[str, Any]) -> str | None:
    return next((found for key in ID_KEYS if (found := _id(node.get(key))) is not None), None)


def _dicts(root: Any) -> Iterator[tuple[object, dict[str, Any]]]:
    """Every object in a JSON document with the key it sits under, in document order (no recursion)."""
    stack: list[tuple[object, Any]] = [(None, root)]
    while stack:
        key, value = stack.pop()
        if isinstance(value, dict):
            yield key, value
            stack.extend((k, v) for k, v in reversed(value.items()) if isinstance(v, dict | list))
        elif isinstance(value, list):
            stack.extend((None, v) for v in reversed(value) if isinstance(v, dict | list))


def _scripts(body: bytes, opener: re.Pattern[bytes]) -> Iterator[bytes | None]:
    """The contents of each matching script tag; None for one that is never closed."""
    pos = 0
    while match := opener.search(body, pos):
        close = body.find(SCRIPT_CLOSE, match.end())
        if close < 0:
            yield None
            return
        yield body[match.end() : close]
        pos = close + len(SCRIPT_CLOSE)


class _VideoSearch:
    """Key search for the video node and its feedback over the decoded data-sjs documents."""

    def __init__(self, want: str | None) -> None:
        self.want, self.key = want, want
        self.node: dict[str, Any] = {}
        self.feedback: dict[str, Any] | None = None
        self.loose_feedback: dict[str, Any] | None = None
        self.found = False
        # Feedback objects by their `id`, merged (a reel splits one over two objects), and which
        # feedback ids belong to which video id.
        self.feedbacks: dict[str, dict[str, Any]] = {}
        self.owners: list[tuple[str, str]] = []

    def complete(self) -> bool:
        wanted = (("liveViewerCount",), STATUS_KEYS, ("video_view_count", "viewCount"))
        return self.feedback is not None and all(any(k in self.node for k in keys) for keys in wanted)

    def _index_feedback(self, parent: object, obj: dict[str, Any]) -> None:
        fid = obj.get("id") if parent == "feedback" else None
        if isinstance(fid, str) and fid:
            group = self.feedbacks.setdefault(fid, {})
            for k, v in obj.items():
                group.setdefault(k, v)
            if (video := _node_id(_object(obj.get("associated_video")))) is not None:
                self.owners.append((video, fid))
        fb = obj.get("feedback")
        fid = fb.get("id") if isinstance(fb, dict) else None
        owner = _node_id(obj) or _node_id(_object(obj.get("video")))
        if isinstance(fid, str) and owner is not None:
            self.owners.append((owner, fid))

    def visit(self, doc: Any) -> bool:
        """Search one block; True once every field group is found."""
        found_here = False
        block_feedback: dict[str, Any] | None = None
        foreign: set[int] = set()  # feedback objects of other videos' nodes (seen before their children)
        for parent, obj in _dicts(doc):
            self._index_feedback(parent, obj)
            if parent == "feedback":
                if block_feedback is None and id(obj) not in foreign:
                    block_feedback = obj if any(k in obj for k in FEEDBACK_KEYS) else None
                continue
            if not any(obj.get(k) is not None for k in VIDEO_KEYS):
                continue
            node_id = _node_id(obj)
            if not self.found and (self.want is None or node_id in (self.want, None)):
                self.found = found_here = True
                self.key = self.key or node_id
            fb = obj.get("feedback")
            if not self.found or node_id not in (self.key, None):
                foreign.add(id(fb))
                continue
            for k, v in obj.items():
                self.node.setdefault(k, v)
            if self.feedback is None and isinstance(fb, dict) and any(k in fb for k in FEEDBACK_KEYS):
                self.feedback = fb
            if self.complete():
                return True
        if found_here:
            # Only a feedback object in the video's own block may stand in for the node's.
            self.loose_feedback = block_feedback
        return False

    def video_feedback(self) -> dict[str, Any]:
        """The node's feedback, merged with every feedback object of the same id or owned by the video."""
        merged: dict[str, Any] = {}
        own = [self.feedback] if self.feedback is not None else []
        ids = [fb.get("id") for fb in own] + [fid for owner, fid in self.owners if owner == self.key]
        # Only string ids: a junk id (a list, an object) cannot be a key and names no feedback.
        groups = [
            self.feedbacks[fid]
            for fid in dict.fromkeys(i for i in ids if isinstance(i, str))
            if fid in self.feedbacks
        ]
        for part in (*own, *groups):
            for k, v in part.items():
                merged.setdefault(k, v)
        return merged or self.loose_feedback or {}


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _relay_docs(body: bytes, errors: list[str]) -> Iterator[Any]:
    """The decoded data-sjs blocks that can hold a video node or a feedback; a junk one is an error."""
    for raw in _scripts(body, SJS_OPEN):
        if raw is None:
            errors.append("unclosed data-sjs script")
            return
        if not RELEVANT.search(raw):
            # Real pages have 50-70 blocks of defines and unrelated queries: decoding and walking them
            # all costs more than the rest of the poll.
            continue
        try:
            yield orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            errors.append(str(exc)[:200])


def _title(node: dict[str, Any]) -> str | None:
    title = first(node, ("title", "text"), ("title",), ("name",))
    return title if isinstance(title, str) else None


def _result(readings: list[Reading], status: LiveStatus, key: str | None, title: str | None) -> ParseResult:
    readings.append(Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[status])))
    return ParseResult(readings, SessionObservation(key, status, title) if key else None)


def is_broadcast(node: dict[str, Any]) -> bool:
    """False for a video that never was a live broadcast (a plain upload or a reel: real captures)."""
    if isinstance(live := node.get("live_status"), str) and live.upper() == NOT_A_BROADCAST:
        return False
    streaming = (
        node.get("is_live_streaming") is True or node.get("broadcast_status") or node.get("live_status")
    )
    return not (node.get("is_video_broadcast") is False and not streaming)


def _from_relay(body: bytes, search: _VideoSearch) -> ParseResult:
    node = search.node
    status = video_status(node)
    # Only a running broadcast has concurrent viewers; `liveViewerCount: 0` elsewhere tells nothing.
    specs = VIDEO_METRICS if status in RUNNING else VIDEO_METRICS[1:]
    readings = readings_from({"node": node, "feedback": search.video_feedback()}, specs)
    if not any(r.metric is Metric.VIEWS for r in readings) and (match := JS_VIEW_COUNT.search(body)):
        readings += readings_from({"viewCount": match[1].decode()}, [VIEWS_TEXT])
    key = search.key if is_broadcast(node) else None  # no live session for a video that is not one
    return _result(readings, status, key, _title(node))


def _from_json_ld(body: bytes, want: str | None) -> ParseResult | None:
    """Old pages: views (and other actions) from a JSON-LD VideoObject, or None without one."""
    for raw in _scripts(body, LD_OPEN):
        try:
            doc = orjson.loads(raw) if raw is not None else None
        except orjson.JSONDecodeError:
            continue
        for _, obj in _dicts(doc):
            kind = obj.get("@type")
            if kind != "VideoObject" and not (isinstance(kind, list) and "VideoObject" in kind):
                continue
            stats = obj.get("interactionStatistic")
            counts: dict[str, Any] = {}
            for stat in stats if isinstance(stats, list) else [stats]:
                action = stat.get("interactionType") if isinstance(stat, dict) else None
                action = action.get("@type") if isinstance(action, dict) else action
                if isinstance(action, str) and isinstance(stat, dict):
                    counts.setdefault(action.rsplit("/", 1)[-1], stat.get("userInteractionCount"))
            readings = readings_from(counts, LD_METRICS)
            url = first(obj, ("url",), ("embedUrl",))
            key = want or (video_id_from(url) if isinstance(url, str) else None)
            title = obj.get("name") if isinstance(obj.get("name"), str) else None
            return _result(readings, LiveStatus.UNKNOWN, key, title)
    return None


def _login_url(url: str) -> bool:
    try:
        path = urlsplit(url).path
    except ValueError:
        return False
    return not LOGIN_PATH_SEGMENTS.isdisjoint(path.split("/"))


def classify_unusable(body: bytes, final_url: str = "") -> PollError | None:
    """The error a page stands for when it has no video data: block, login wall or missing content."""
    if _login_url(final_url):
        return LoginWall(f"redirected to a login or checkpoint page: {final_url[:120]}")
    if any(marker.search(body) for marker in BLOCKED_MARKERS):
        return Blocked("Facebook security check or temporary block page")
    if any(marker.search(body) for marker in LOGIN_MARKERS):
        return LoginWall("Facebook log-in page in place of the content: needs logged-in cookies (c_user, xs)")
    if any(marker in body for marker in UNAVAILABLE_MARKERS):
        return NotFound("Facebook says this content isn't available")
    return None


def parse_video_page(body: bytes, *, final_url: str = "", video_id: str | None = None) -> ParseResult:
    """A video page -> counters, live status and the session (keyed by the video id).

    `final_url` (after redirects) detects login redirects; `video_id`, when known, keeps the search
    to the node with that id.
    """
    if _login_url(final_url):
        raise classify_unusable(body, final_url) or LoginWall(final_url)
    errors: list[str] = []
    search = _VideoSearch(video_id)
    for doc in _relay_docs(body, errors):
        if search.visit(doc):
            break
    if search.found:
        return _from_relay(body, search)
    if error := classify_unusable(body):
        raise error
    if (ld := _from_json_ld(body, video_id)) is not None:
        return ld
    if errors:
        raise ParseFailure("bad_json", errors[0])
    if blocks := sum(1 for _ in _scripts(body, SJS_OPEN)):
        raise ParseFailure("no_video_node", f"{blocks} data-sjs blocks, none with a video node")
    raise ParseFailure("no_relay_json", "no data-sjs script and no login markers")


def find_live_video(body: bytes, final_url: str = "") -> str | None:
    """The running broadcast's id on a `/{page}/live/` answer, or None when the page is not live."""
    if not _login_url(final_url) and (found := url_video_id(final_url)) is not None:
        return found
    for doc in _relay_docs(body, []):
        for _, obj in _dicts(doc):
            live = any(k in obj for k in STATUS_KEYS) and video_status(obj) in RUNNING
            if live and (found := _node_id(obj) or _id(obj.get("broadcast_id"))) is not None:
                return found
    if LIVE_MARKER.search(body):
        for pattern in ID_IN_BODY:
            if (id_match := pattern.search(body)) and (found := _id(id_match[1].decode())):
                return found
    if error := classify_unusable(body, final_url):
        raise error
    return None


def _cookie_header(raw: str) -> str:
    """A cookie secret as one header value: a `Cookie:` prefix and line breaks (cookie files) are fine."""
    text = raw.strip()
    if text[:7].lower() == "cookie:":
        text = text[7:]
    parts = (p.strip() for p in re.split(r"[;\r\n]+", text))
    return "; ".join(p for p in parts if p)


@dataclass(slots=True)
class LiveVideoState:
    """What a `page` target keeps between polls: the broadcast it follows and the last that ended."""

    video_id: str | None = None
    ended_video_id: str | None = None


def check_live(params: Mapping[str, str]) -> Iterator[FieldProblem]:
    if "video_id" in params and video_id_from(params["video_id"]) is None:
        yield FieldProblem("video_id", f"not a Facebook video id or video URL: {params['video_id'][:120]!r}")
    if "page" in params and not page_slug(params["page"]):
        yield FieldProblem("page", f"not a Facebook page slug or page URL: {params['page'][:120]!r}")
    if not params.get("video_id") and not params.get("page"):
        yield FieldProblem("video_id", "missing (a facebook live target needs video_id, page or both)")


def _headers(ctx: PollContext[LiveVideoState]) -> dict[str, str]:
    headers = dict(BROWSER_HEADERS)
    secret = ctx.target.secrets.get("cookies")
    if secret is not None and (cookie := _cookie_header(secret.reveal())):
        headers["Cookie"] = cookie
    return headers


async def _video(ctx: PollContext[LiveVideoState], page: str | None, video_id: str) -> ParseResult:
    web = ctx.base_urls["web"]
    url = f"{web}/{quote(page, safe='.-_')}/videos/{video_id}" if page else f"{web}/watch/live/?v={video_id}"
    raw = await ctx.http.get(url, headers=_headers(ctx))
    return parse_video_page(raw.body, final_url=raw.url, video_id=video_id)


async def poll_live(ctx: PollContext[LiveVideoState]) -> PollResult:
    params, state = ctx.target.params, ctx.state
    page = page_slug(params["page"]) if params.get("page") else None
    if params.get("video_id"):
        video_id = video_id_from(params["video_id"])
        if video_id is None:  # checked at load; a hand-built target may still get here
            raise NotFound(f"not a Facebook video id or video URL: {params['video_id'][:120]!r}")
        return _video_result(await _video(ctx, page, video_id))
    if not page:
        raise NotFound("facebook live target needs video_id or page")
    live_url = f"{ctx.base_urls['web']}/{quote(page, safe='.-_')}/live/"
    raw = await ctx.http.get(live_url, headers=_headers(ctx))
    live_id = find_live_video(raw.body, raw.url)
    if live_id is None:
        if (last := state.video_id) is not None:
            # The broadcast just stopped: its replay keeps the final counts (platforms.md 4.1).
            state.video_id, state.ended_video_id = None, last
            return _video_result(await _video(ctx, page, last))
        return _not_live(state.ended_video_id)
    if url_video_id(raw.url) == live_id:  # redirected onto the video page itself
        parsed = parse_video_page(raw.body, final_url=raw.url, video_id=live_id)
    else:
        parsed = await _video(ctx, page, live_id)
    ended = parsed.session is not None and parsed.session.status is LiveStatus.ENDED
    if ended and state.ended_video_id == live_id and state.video_id is None:
        return _not_live(live_id)  # a stale redirect to a replay already recorded
    if ended:
        state.video_id, state.ended_video_id = None, live_id
    else:
        state.video_id = live_id
    return PollResult(Outcome.OK, parsed)


def reparse_live(raw: RawResponse) -> ParseResult | None:
    """A stored video page back to its readings (a `/{page}/live/` answer only when it was the video)."""
    parts = urlsplit(raw.url)
    watched = parse_qs(parts.query).get("v", [""])[0] if "/watch" in parts.path else ""
    video_id = url_video_id(raw.url) or _id(watched)
    if video_id is None:
        return None
    return parse_video_page(raw.body, final_url=raw.url, video_id=video_id)


async def video_history(
    ctx: PollContext[LiveVideoState], video_ids: Sequence[str]
) -> AsyncIterator[ParseResult]:
    """Final counters of broadcasts the target saw: an ended live video's page keeps them."""
    page = page_slug(ctx.target.params["page"]) if ctx.target.params.get("page") else None
    for video_id in video_ids:
        yield await _video(ctx, page, video_id)


def _video_result(parsed: ParseResult) -> PollResult:
    # A video that is not a broadcast has no live session: it is read, but the target is not live.
    return PollResult(Outcome.OK if parsed.session is not None else Outcome.NOT_LIVE, parsed)


class FacebookAdapter:
    name = "facebook"
    kinds = {
        "live": KindSpec(
            poll_live,
            optional=("video_id", "page"),
            optional_secrets=("cookies",),
            check=check_live,
            new_state=LiveVideoState,
            reparse=reparse_live,
            history=video_history,
            summary="a live video by video_id (id or URL) and/or the page that is live (page slug or URL)",
        )
    }
    default_base_urls = {"web": "https://www.facebook.com"}
    markers = MARKERS


def _not_live(ended: str | None) -> PollResult:
    status = LiveStatus.ENDED if ended else LiveStatus.UNKNOWN
    session = SessionObservation(ended, status) if ended else None
    return PollResult(
        Outcome.NOT_LIVE, ParseResult([Reading(Metric.LIVE_STATUS, float(LIVE_STATUS_CODE[status]))], session)
    )


adapter = FacebookAdapter()

__all__ = ["LiveVideoState", "adapter", "classify_unusable", "find_live_video", "page_slug", "parse_video_page", "url_video_id",
           "video_id_from", "video_status"]  # fmt: skip
