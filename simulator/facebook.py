"""Facebook live video routes under `/www.facebook.com` (shapes: platforms.md 4.1 and 6).

Facebook data belongs to this module, keyed by scenario name (`WORLDS`); every counter is a pure
function of (seed, video, scenario second). Choices where platforms.md marks the shape [U] or is silent:
- the Relay JSON is spread over several `<script type="application/json" data-sjs>` blocks (ServerJS
  defines, a navigation query, the video query at `…__bbox.result.data.video`, a comments preview);
  only the video block holds a video node;
- `/{page}/live/` answers 302 to `/{page}/videos/{id}/` while a broadcast runs (paused included);
  otherwise it serves the page profile without live markers (it may name an old replay's
  `"video_id"`), and an unknown page answers "This content isn't available right now" (HTTP 200);
- after the end the same URL serves the replay: VOD_READY/WAS_LIVE, liveViewerCount 0, counts frozen;
  a video that has not started (or an unknown id) is "not available" too;
- pages with `login_required`: without a `c_user` cookie the video URL serves the login form (200)
  and `/live/` redirects to `/login/?next=…`; ids in `security_check_ids` answer a captcha page;
- what the real site serves signed out (shared/real-captures/facebook): without `c_user` every page
  carries the log-in form query preloader (`useCometLogInFormQuery`) and the blue bar's
  `<form id="login_form">` beside its content; ids in `interstitial_ids` answer the security
  interstitial ("blocked by our security systems", HTTP 200, with the login form too); a video with
  `reel` set is a reel: its video URLs answer 302 to `/reel/{id}/`, whose node has no counts and is no
  broadcast (`is_video_broadcast: false`), its feedback split over two objects of one id in another
  block (reactions as `likers`/`unified_reactors`; `total_comment_count` and `share_count_reduced` in
  the other, beside `video.id`), and no view count;
- display strings follow the page locale, truncated to one decimal: "vi" 2345 -> "2,3K",
  1_234_567 -> "1,2 Tr"; "en" -> "2.3K", "1.2M"; thousands "12.345" (vi) or "12,345" (en);
- an `i18n_only` page gives counts only as display strings: views as `viewCount:"12.345"`, comments
  via `comment_rendering_instance`, reactions/shares as `i18n_*` and `share_count_reduced`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import math
from dataclasses import asdict, dataclass
from urllib.parse import quote

import orjson
from aiohttp import web

from simulator.keys import CLOCK, SCENARIO
from simulator.scenario import Scenario, seeded_unit

NAME = "facebook"
WWW = "/www.facebook.com"
BUCKET_SECONDS = 5.0  # viewer noise changes every 5 s
WIGGLE = 0.6  # < 1 keeps the cumulative curves strictly increasing
PAUSED_AUDIENCE = 0.4
COUNTERS = ("viewers", "views", "reactions", "comments", "shares")
# status -> (broadcast_status, live_status, is_live_streaming), platforms.md 4.1
BROADCAST = {
    "live": ("LIVE", "LIVE", True),
    "paused": ("LIVE", "PAUSED", True),
    "ended": ("VOD_READY", "WAS_LIVE", False),
}


@dataclass(frozen=True)
class FbPage:
    slug: str
    name: str
    page_id: str
    locale: str = "vi"
    login_required: bool = False
    i18n_only: bool = False


@dataclass(frozen=True)
class FbVideo:
    video_id: str
    page: str
    start: float  # scenario seconds
    duration: float
    peak_viewers: int
    title: str
    pause: tuple[float, float] | None = None  # (seconds into the broadcast, length)
    reel: bool = False  # a reel, not a broadcast (counts grow over `duration` like a broadcast's)

    @property
    def end(self) -> float:
        return self.start + self.duration


@dataclass(frozen=True)
class World:
    pages: tuple[FbPage, ...]
    videos: tuple[FbVideo, ...]
    security_check_ids: frozenset[str] = frozenset()
    interstitial_ids: frozenset[str] = frozenset()

    def page(self, slug: str) -> FbPage | None:
        return next((p for p in self.pages if p.slug == slug), None)

    def video(self, video_id: str) -> FbVideo | None:
        return next((v for v in self.videos if v.video_id == video_id), None)


@dataclass(frozen=True)
class VideoState:
    """What a video page shows at one instant."""

    status: str  # "live", "paused" or "ended"
    viewers: int
    views: int
    reactions: int
    comments: int
    shares: int


OCOP = FbPage("laichau.ocop", "OCOP Lai Châu", "100064512345678", "vi")
HTX = FbPage("htx.chelaichau", "HTX Chè Lai Châu", "100083987654321", "en", i18n_only=True)
PRIVATE = FbPage("sanvat.taybac", "Sản vật Tây Bắc", "100090246813579", "vi", login_required=True)
SECURITY_CHECK_ID = "1999000000000001"
INTERSTITIAL_ID = "1999000000000002"
REEL_ID = "1380000000000002"
EVENT_SIMULCAST_START = 172_800 + 5_400  # mirrors the TikTok event-week session at the same time

WORLDS: dict[str, World] = {
    "demo": World(
        pages=(OCOP, HTX, PRIVATE),
        videos=(
            FbVideo("1029384756102938", OCOP.slug, -900, 5400, 600, "Phiên chợ OCOP Lai Châu trực tiếp",
                    pause=(2700, 120)),
            FbVideo("1122334455667788", HTX.slug, -7200, 3600, 1200, "Chè Shan Tuyết - livestream sáng"),
            FbVideo("1357924680135792", PRIVATE.slug, -600, 7200, 900, "Sản vật Tây Bắc - giờ vàng"),
            FbVideo(REEL_ID, OCOP.slug, -86_400, 3600, 400, "Đặc sản Lai Châu trong 60 giây", reel=True),
        ),
        security_check_ids=frozenset({SECURITY_CHECK_ID}),
        interstitial_ids=frozenset({INTERSTITIAL_ID}),
    ),
    "event-week": World(
        pages=(OCOP, HTX),
        videos=(
            FbVideo("1048576000000001", OCOP.slug, EVENT_SIMULCAST_START, 7200, 1500,
                    "Tuần lễ OCOP Lai Châu - phát song song TikTok"),
        ),
        security_check_ids=frozenset({SECURITY_CHECK_ID}),
    ),
}  # fmt: skip
EMPTY_WORLD = World((), ())


def world_for(scenario: Scenario) -> World:
    return WORLDS.get(scenario.name, EMPTY_WORLD)


def _unit(seed: int, video: FbVideo, *parts: object) -> float:
    return seeded_unit(seed, NAME, video.video_id, *parts)


def _grown(seed: int, video: FbVideo, name: str, total: float, x: float) -> int:
    """`total * g(x)`: g rises from 0 to 1 with a seeded wiggle and never decreases (g' >= 1 - WIGGLE)."""
    omega = 2 * math.pi * (3 + int(4 * _unit(seed, video, name, "k")))
    phase = 2 * math.pi * _unit(seed, video, name, "phase")
    g = x + WIGGLE * (math.sin(omega * x + phase) - math.sin(phase)) / omega
    return math.floor(total * min(1.0, max(0.0, g)))


def _viewers(seed: int, video: FbVideo, into: float, paused: bool) -> int:
    """Ramp up, plateau, fall near the end; noisy per 5 s bucket; most viewers leave while paused."""
    ramp = tail = min(300.0, 0.15 * video.duration)
    level = 0.2 + 0.8 * min(1.0, into / ramp)
    if into > video.duration - tail:
        level *= max(0.05, (video.duration - into) / tail)
    if paused:
        level *= PAUSED_AUDIENCE
    noise = _unit(seed, video, "viewers", int(into // BUCKET_SECONDS))
    return max(1, round(video.peak_viewers * level * (0.92 + 0.16 * noise)))


def video_state(seed: int, video: FbVideo, elapsed: float) -> VideoState | None:
    """The video at scenario second `elapsed`; None before it starts."""
    if elapsed < video.start:
        return None
    into = min(elapsed - video.start, video.duration)
    ended = elapsed >= video.end
    paused = not ended and video.pause is not None and 0 <= into - video.pause[0] < video.pause[1]
    views_total = video.peak_viewers * video.duration / 60 * (0.4 + 0.3 * _unit(seed, video, "views"))
    reactions_total = views_total * (0.06 + 0.04 * _unit(seed, video, "reactions"))
    comments_total = reactions_total * (0.25 + 0.15 * _unit(seed, video, "comments"))
    shares_total = views_total * (0.004 + 0.004 * _unit(seed, video, "shares"))
    x = into / video.duration
    return VideoState(
        status="ended" if ended else "paused" if paused else "live",
        viewers=0 if ended else _viewers(seed, video, into, paused),
        views=_grown(seed, video, "views", views_total, x),
        reactions=_grown(seed, video, "reactions", reactions_total, x),
        comments=_grown(seed, video, "comments", comments_total, x),
        shares=_grown(seed, video, "shares", shares_total, x),
    )


def i18n_count(n: int, locale: str) -> str:
    """Compact display text, one decimal truncated: vi "2,3K"/"1,2 Tr", en "2.3K"/"1.2M"."""
    vi = locale == "vi"
    for unit, en_suffix, vi_suffix in ((10**9, "B", " T"), (10**6, "M", " Tr"), (10**3, "K", "K")):
        if n >= unit:
            whole, tenth = divmod(n * 10 // unit, 10)
            number = f"{whole}{',' if vi else '.'}{tenth}" if tenth else str(whole)
            return number + (vi_suffix if vi else en_suffix)
    return str(n)


def grouped(n: int, locale: str) -> str:
    """Thousands grouping: vi "12.345", en "12,345"."""
    text = f"{n:,}"
    return text.replace(",", ".") if locale == "vi" else text


def _sjs(payload: object) -> str:
    # "</" inside a script element would end it early; Facebook escapes it the same way.
    text = orjson.dumps(payload).decode().replace("</", "<\\/")
    size = len(text.encode())  # bytes, like the real attribute
    return f'<script type="application/json" data-content-len="{size}" data-sjs>{text}</script>'


def _relay(query: str, data: dict, sequence: int = 0) -> dict:
    """One RelayPrefetchedStreamCache payload as Facebook nests it (platforms.md 4.1)."""
    preloader = f"adp_{query}RelayPreloader_{hashlib.blake2b(query.encode(), digest_size=8).hexdigest()}"
    result = {"data": data, "extensions": {"is_final": True}}
    bbox = {"complete": True, "result": result, "sequence_number": sequence}
    cache = [["RelayPrefetchedStreamCache", "next", [], [preloader, {"__bbox": bbox}]]]
    return {"require": [["ScheduledServerJS", "handle", None, [{"__bbox": {"require": cache}}]]]}


def _defines(user_id: str, locale: str) -> dict:
    defines = [
        ["CurrentUserInitialData", [], {"USER_ID": user_id, "ACCOUNT_ID": user_id, "NAME": ""}, 270],
        ["LSD", [], {"token": "AVqbxe3J_YA"}, 323],
        ["SiteData", [], {"server_revision": 1012345678, "locale": f"{locale}_VN"}, 317],
    ]
    return {"require": [["ScheduledServerJS", "handle", None, [{"__bbox": {"define": defines}}]]]}


SIGNED_OUT_BAR = (
    '<div class="menu_login_container rfloat _ohf" data-testid="royal_login_form">'
    '<form id="login_form" action="/login/device-based/regular/login/?login_attempt=1" method="post">'
    '<input type="email" name="email" id="email"><input type="password" name="pass" id="pass">'
    '<input value="Đăng nhập" type="submit"></form></div>'
)


def _signed_out(user_id: str, main: str, scripts: list[dict]) -> tuple[str, list[dict]]:
    """A signed-out visitor's page: the blue bar's login form and the log-in query beside the content."""
    if user_id != "0":
        return main, scripts
    return SIGNED_OUT_BAR + main, [*scripts, _relay("useCometLogInFormQuery", LOGIN_DATA)]


LOGIN_DATA = {"login_data": {"is_two_step": False}}


def _document(title: str, main: str, scripts: list[dict]) -> str:
    return (
        '<!DOCTYPE html><html lang="vi" id="facebook"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        '<link rel="preload" href="https://static.xx.fbcdn.net/rsrc.php/v3/comet.css" as="style">'
        '<script>requireLazy(["TimeSliceImpl","ServerJS"],function(){});</script>'
        f'</head><body class="_6s5d _71pn"><div id="mount_0_0_x9">{main}</div>'
        + "".join(_sjs(payload) for payload in scripts)
        + "</body></html>"
    )


def video_node(page: FbPage, video: FbVideo, state: VideoState, epoch: float) -> dict:
    """The Relay video node with its `feedback`, in the page's count style."""
    broadcast, live, streaming = BROADCAST[state.status]
    loc = page.locale
    feedback: dict = {"id": base64.b64encode(f"feedback:{video.video_id}".encode()).decode()}
    if page.i18n_only:
        feedback |= {
            "i18n_reaction_count": i18n_count(state.reactions, loc),
            "comment_rendering_instance": {"comments": {"total_count": state.comments}},
            "i18n_share_count": i18n_count(state.shares, loc),
            "share_count_reduced": i18n_count(state.shares, loc),
        }
        views: dict = {"viewCount": grouped(state.views, loc)}
    else:
        feedback |= {
            "reaction_count": {"count": state.reactions},
            "i18n_reaction_count": i18n_count(state.reactions, loc),
            "total_comment_count": state.comments,
            "share_count": {"count": state.shares},
            "i18n_share_count": i18n_count(state.shares, loc),
        }
        views = {"video_view_count": state.views}
    return {
        "__typename": "Video",
        "id": video.video_id,
        "videoId": video.video_id,
        "title": {"text": video.title},
        "owner": {"__typename": "Page", "id": page.page_id, "name": page.name},
        "is_live_streaming": streaming,
        "is_video_broadcast": True,
        "broadcast_status": broadcast,
        "live_status": live,
        "liveViewerCount": state.viewers,
        **views,
        "publish_time": int(epoch + video.start),
        "permalink_url": f"https://www.facebook.com/{page.slug}/videos/{video.video_id}/",
        "feedback": feedback,
    }


def video_page(page: FbPage, video: FbVideo, state: VideoState, epoch: float, user_id: str) -> str:
    data = {"video": video_node(page, video, state, epoch)}
    comments = {"comments_preview": {"edges": [{"node": {"author": {"name": "Khách hàng"},
                                                         "body": {"text": "Giá bao nhiêu ạ?"}}}]}}  # fmt: skip
    scripts = [
        _defines(user_id, page.locale),
        _relay("CometNavigationBarQuery", {"viewer": {"actor": {"__typename": "User", "id": user_id}}}),
        _relay("CometVideoRootMediaViewerQuery", {"video": {"__typename": "Video", "id": video.video_id}}),
        _relay("CometVideoRootMediaViewerQuery", data, sequence=1),
        _relay("CometUFICommentsProviderQuery", comments),
    ]
    main = f'<div role="main"><h2>{html.escape(page.name)}</h2><div data-pagelet="WatchPermalinkVideo"></div></div>'
    return _document(f"{video.title} | {page.name} | Facebook", *_signed_out(user_id, main, scripts))


def reel_page(page: FbPage, video: FbVideo, state: VideoState, user_id: str) -> str:
    """A reel as the real site serves it: the node in one block, its feedback split in another."""
    feedback_id = base64.b64encode(f"feedback:{video.video_id}".encode()).decode()
    playback = {"id": video.video_id, "broadcast_id": None, "broadcast_status": None,
                "is_live_streaming": False, "is_video_broadcast": False}  # fmt: skip
    story_id = base64.b64encode(f"S:_I{page.page_id}:VK:{video.video_id}".encode()).decode()
    reactions = {
        "id": feedback_id,
        "likers": {"count": state.reactions},
        "unified_reactors": {"count": state.reactions},
    }
    bar = {
        "id": story_id,
        "video": {"id": video.video_id},
        "fb_reel_react_button": {"__typename": "XFBFBReelReactButtonRenderer", "story": {"feedback": reactions}},
        "feedback": {"total_comment_count": state.comments, "id": feedback_id,
                     "share_count_reduced": i18n_count(state.shares, page.locale)},
        "url": f"https://www.facebook.com/reel/{video.video_id}/",
    }  # fmt: skip
    root = {
        "video": {
            "id": video.video_id,
            "creation_story": {"short_form_video_context": {"playback_video": playback}},
        }
    }
    scripts = [
        _defines(user_id, page.locale),
        _relay("FBReelsRootQuery", root),
        _relay("FBReelsFeedbackBarQuery", bar),
    ]
    return _document("Facebook", *_signed_out(user_id, '<div role="main"></div>', scripts))


def profile_page(world: World, page: FbPage, elapsed: float, user_id: str) -> str:
    """The page profile: no live marker; the latest replay is named by `"video_id"` only."""
    ended = [v for v in world.videos if v.page == page.slug and v.end <= elapsed and not v.reel]
    media = (
        {"__typename": "Video", "video_id": v.video_id} for v in sorted(ended, key=lambda v: -v.start)[:3]
    )
    edges = [{"node": {"__typename": "Story", "attachments": [{"media": m}]}} for m in media]
    header = {"page": {"id": page.page_id, "name": page.name, "category_name": "Shopping & retail"}}
    scripts = [
        _defines(user_id, page.locale),
        _relay("ProfileCometHeaderQuery", header),
        _relay("ProfileCometTimelineFeedQuery", {"timeline_list_feed_units": {"edges": edges}}),
    ]
    main = f'<div role="main"><h1>{html.escape(page.name)}</h1></div>'
    return _document(f"{page.name} | Facebook", *_signed_out(user_id, main, scripts))


def login_page() -> str:
    form = (
        '<form id="login_form" action="/login/device-based/regular/login/?login_attempt=1" method="post">'
        '<input type="text" name="email"><input type="password" name="pass">'
        '<button name="login" type="submit">Đăng nhập</button></form>'
    )
    scripts = [_defines("0", "vi"), _relay("useCometLogInFormQuery", LOGIN_DATA)]
    return _document("Facebook - Đăng nhập hoặc đăng ký", form, scripts)


def security_check_page() -> str:
    main = (
        "<h2>Security Check Required</h2><p>Facebook needs to make sure you're not a robot.</p>"
        '<form action="/checkpoint/" method="post"><div id="captcha"></div></form>'
    )
    return _document("Security Check Required", main, [])


def interstitial_page() -> str:
    """The security interstitial (real capture dir_blocked.html): HTTP 200, the login form included."""
    main = (
        '<div id="content"><h2>Message Failed</h2><div>This message contains content that has been '
        'blocked by our security systems.</div><a href="/">Back</a></div>'
    )
    return _document("Facebook", SIGNED_OUT_BAR + main, [_defines("0", "vi")])


def unavailable_page() -> str:
    main = "<h2>This content isn't available right now</h2><p>The link may be broken or removed.</p>"
    return _document("Facebook", main, [_defines("0", "vi")])


def _user_id(request: web.Request) -> str | None:
    """The logged-in user: a non-empty `c_user` cookie (platforms.md 4.1 access)."""
    return request.cookies.get("c_user") or None


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html")


def _serve_video(request: web.Request, video_id: str) -> web.Response:
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    world, elapsed = world_for(scenario), clock.elapsed()
    if video_id in world.security_check_ids:
        return _html(security_check_page())
    if video_id in world.interstitial_ids:
        return _html(interstitial_page())
    video = world.video(video_id)
    page = world.page(video.page) if video else None
    state = video_state(scenario.seed, video, elapsed) if video else None
    if video is None or page is None or state is None:
        return _html(unavailable_page())
    user_id = _user_id(request)
    if page.login_required and user_id is None:
        return _html(login_page())
    if video.reel:
        raise web.HTTPFound(f"{WWW}/reel/{video.video_id}/")
    return _html(video_page(page, video, state, clock.epoch(), user_id or "0"))


async def handle_reel(request: web.Request) -> web.Response:
    """GET /www.facebook.com/reel/{id}/: a reel; any other video id is not available here."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    world = world_for(scenario)
    video = world.video(request.match_info["video_id"])
    page = world.page(video.page) if video else None
    state = video_state(scenario.seed, video, clock.elapsed()) if video and video.reel else None
    if video is None or page is None or state is None:
        return _html(unavailable_page())
    return _html(reel_page(page, video, state, _user_id(request) or "0"))


async def handle_video(request: web.Request) -> web.Response:
    """GET /www.facebook.com/{page}/videos/{id}[/] (Facebook resolves the id; the slug is cosmetic)."""
    return _serve_video(request, request.match_info["video_id"])


async def handle_watch(request: web.Request) -> web.Response:
    """GET /www.facebook.com/watch/live/?v=ID, /watch/?v=ID and /video.php?v=ID."""
    return _serve_video(request, request.query.get("v", ""))


async def handle_page_live(request: web.Request) -> web.Response:
    """GET /www.facebook.com/{page}/live/: 302 to the running broadcast, else the profile."""
    scenario, clock = request.app[SCENARIO], request.app[CLOCK]
    world, elapsed = world_for(scenario), clock.elapsed()
    page = world.page(request.match_info["page"])
    if page is None:
        return _html(unavailable_page())
    user_id = _user_id(request)
    if page.login_required and user_id is None:
        raise web.HTTPFound(
            f"{WWW}/login/?next={quote(f'https://www.facebook.com/{page.slug}/live/', safe='')}"
        )
    running = [v for v in world.videos if v.page == page.slug and v.start <= elapsed < v.end and not v.reel]
    if running:
        latest = max(running, key=lambda v: v.start)
        raise web.HTTPFound(f"{WWW}/{page.slug}/videos/{latest.video_id}/")
    return _html(profile_page(world, page, elapsed, user_id or "0"))


async def handle_login(request: web.Request) -> web.Response:
    """GET /www.facebook.com/login/: the login form."""
    return _html(login_page())


def truth(scenario: Scenario, elapsed: float, epoch: float) -> dict:
    """Ground truth per video id at `elapsed` (exact counts; pages may show them abbreviated)."""
    world = world_for(scenario)
    videos = {}
    for video in world.videos:
        state = video_state(scenario.seed, video, elapsed)
        page = world.page(video.page)
        broadcast, live, _ = BROADCAST[state.status] if state else (None, None, None)
        if video.reel:
            broadcast, live = None, "NEVER_LIVE"
        counts = asdict(state) if state else dict.fromkeys(COUNTERS, 0)
        videos[video.video_id] = {
            "page": video.page,
            "title": video.title,
            "status": counts.pop("status", None),
            "broadcast_status": broadcast,
            "live_status": live,
            "start_time": int(epoch + video.start),
            "end_time": int(epoch + video.end) if state and state.status == "ended" else None,
            **counts,
            "login_required": bool(page and page.login_required),
            "reel": video.reel,
        }
    return videos


def register(app: web.Application) -> None:
    """Add the Facebook routes; the app must carry SCENARIO and CLOCK."""
    app.router.add_get(f"{WWW}/login/", handle_login)
    app.router.add_get(f"{WWW}/watch/live/", handle_watch)
    app.router.add_get(f"{WWW}/watch/", handle_watch)
    app.router.add_get(f"{WWW}/video.php", handle_watch)
    app.router.add_get(WWW + "/reel/{video_id:[0-9]+}/", handle_reel)
    app.router.add_get(WWW + "/{page}/live/", handle_page_live)
    app.router.add_get(WWW + "/{page}/videos/{video_id:[0-9]+}", handle_video)
    app.router.add_get(WWW + "/{page}/videos/{video_id:[0-9]+}/", handle_video)
