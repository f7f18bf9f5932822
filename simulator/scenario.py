"""Deterministic scripted scenarios: which TikTok accounts exist, when each one is live, and which
hashtags exist and how fast their counters rise.

Times are scenario seconds relative to scenario start (negative = before start). Everything here is
a pure function of the seed and the script, so any instant can be recomputed exactly.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

# streamer: normal account; never_live: exists but has no broadcasts;
# age_restricted: broadcasts, but room/info refuses anonymous callers (platforms.md 2.1).
AccountKind = Literal["streamer", "never_live", "age_restricted"]


@dataclass(frozen=True)
class SessionPlan:
    """One scripted broadcast; `title` may use `{n}` for the 1-based session number."""

    start: float
    duration: float
    peak_viewers: int
    title: str
    pause: tuple[float, float] | None = None  # (seconds into the session, length): status 3 window


@dataclass(frozen=True)
class Account:
    """A TikTok account and its broadcast script."""

    unique_id: str
    nickname: str
    followers: int
    kind: AccountKind = "streamer"
    plans: tuple[SessionPlan, ...] = ()
    cycle_seconds: float | None = None  # if set, `plans` repeat with this period forever
    has_commerce_goods: bool = False


@dataclass(frozen=True)
class Session:
    """A concrete broadcast: a plan with its index, room id and cycle offset resolved."""

    unique_id: str
    index: int
    room_id: str
    start: float
    duration: float
    peak_viewers: int
    title: str
    pause: tuple[float, float] | None = None

    @property
    def end(self) -> float:
        """Scenario second at which the broadcast ends."""
        return self.start + self.duration


# Which tag-page header a hashtag's page serves: the newer "N posts" or the older "<strong>N</strong> views".
HeaderMarkup = Literal["posts", "views"]


@dataclass(frozen=True)
class Hashtag:
    """A TikTok hashtag whose views and posts rise from their first to their second value over
    `window` (scenario seconds), and stay there outside it."""

    name: str  # lower case, without '#': TikTok tags ignore case
    views: tuple[int, int]
    posts: tuple[int, int]
    window: tuple[float, float]
    markup: HeaderMarkup = "posts"
    desc: str = ""
    # challenge/detail's `stats.videoCount` is 0 while `statsV2` has the count (drawrowfly#375 [U]).
    zero_stats_video_count: bool = False


@dataclass(frozen=True)
class Scenario:
    """A named, seeded world of accounts and hashtags (TikTok; other platforms key their own data)."""

    name: str
    seed: int
    tiktok: dict[str, Account]
    hashtags: dict[str, Hashtag] = field(default_factory=dict)


def seeded_unit(*parts: object) -> float:
    """A reproducible float in [0, 1) from the given parts (no global RNG state)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@lru_cache(maxsize=4096)
def room_id_for(seed: int, unique_id: str, index: int) -> str:
    """19-digit numeric room id (platforms.md 2.1); real ones start with 7, so ours do too."""
    digest = hashlib.blake2b(f"room:{seed}:{unique_id}:{index}".encode(), digest_size=8).digest()
    return "7" + f"{int.from_bytes(digest, 'big') % 10**18:018d}"


def session_by_index(scenario: Scenario, account: Account, index: int) -> Session:
    """The account's `index`-th broadcast (0-based); cyclic scripts repeat with varied peaks."""
    cycle, slot = divmod(index, len(account.plans))
    if cycle and not account.cycle_seconds:
        raise IndexError(f"{account.unique_id} has only {len(account.plans)} sessions")
    plan = account.plans[slot]
    peak = plan.peak_viewers
    if cycle:
        # Later repetitions vary so consecutive sessions are distinguishable in stored data.
        peak = round(peak * (0.75 + 0.5 * seeded_unit(scenario.seed, account.unique_id, index)))
    return Session(
        unique_id=account.unique_id,
        index=index,
        room_id=room_id_for(scenario.seed, account.unique_id, index),
        start=plan.start + cycle * (account.cycle_seconds or 0.0),
        duration=plan.duration,
        peak_viewers=peak,
        title=plan.title.format(n=index + 1),
        pause=plan.pause,
    )


def latest_session(scenario: Scenario, account: Account, elapsed: float) -> Session | None:
    """The broadcast running at `elapsed`, or the last one that ended; None before the first."""
    if not account.plans:
        return None
    slots = len(account.plans)
    if account.cycle_seconds:
        # Only the current and previous cycle can hold the latest started session.
        cycle = max(0, math.floor((elapsed - account.plans[0].start) / account.cycle_seconds))
        candidates = range(max(0, cycle - 1) * slots, (cycle + 1) * slots)
    else:
        candidates = range(slots)
    latest = None
    for index in candidates:
        session = session_by_index(scenario, account, index)
        if session.start <= elapsed and (latest is None or session.start >= latest.start):
            latest = session
    return latest


def started_sessions(scenario: Scenario, account: Account, elapsed: float) -> Iterator[Session]:
    """Every broadcast of the account that has started by `elapsed`, oldest first."""
    latest = latest_session(scenario, account, elapsed)
    if latest is None:
        return
    last_index = latest.index if account.cycle_seconds else len(account.plans) - 1
    for index in range(last_index + 1):
        session = session_by_index(scenario, account, index)
        if session.start <= elapsed:
            yield session


def find_room(scenario: Scenario, room_id: str, elapsed: float) -> tuple[Account, Session] | None:
    """The account and broadcast owning `room_id`, if that broadcast has started by `elapsed`."""
    for account in scenario.tiktok.values():
        for session in started_sessions(scenario, account, elapsed):
            if session.room_id == room_id:
                return account, session
    return None


def demo(seed: int) -> Scenario:
    """The default scenario: one account per behaviour the collector must handle."""
    accounts = [
        # Live at start (began 5 min earlier); 40 min on, 3 min off, repeating with new room ids.
        Account(
            "shop_vn",
            "Shop VN",
            250_000,
            plans=(SessionPlan(-300, 2400, 350, "Sale 9.9 - phiên {n}"),),
            cycle_seconds=2400 + 180,
            has_commerce_goods=True,
        ),
        # Live at start, long broadcast with thousands of viewers and a 90 s pause 10 min in.
        Account(
            "nongsanlaichau_official",
            "Nông Sản Lai Châu",
            1_200_000,
            plans=(
                SessionPlan(-1800, 4 * 3600, 4200, "Nông sản Lai Châu - chợ phiên", pause=(1800 + 600, 90)),
            ),
            has_commerce_goods=True,
        ),
        # Offline for the first 2 min (yesterday's stale room, status 4), then a new room goes live.
        Account(
            "htx_che_laichau",
            "HTX Chè Lai Châu",
            18_500,
            plans=(
                SessionPlan(-86_400, 5400, 150, "Chè Shan Tuyết - hôm qua"),
                SessionPlan(120, 3600, 600, "Chè Shan Tuyết cổ thụ"),
            ),
        ),
        Account("offline_shop", "Offline Shop", 1_200, kind="never_live"),
        Account(
            "adult_room_vn",
            "Adult Room VN",
            40_000,
            kind="age_restricted",
            plans=(SessionPlan(-600, 7200, 900, "18+ chat đêm khuya"),),
        ),
    ]
    hashtags = [
        # ~8M views at start, rising for days; the page shows the newer "posts" header.
        Hashtag(
            "nongsanlaichau",
            views=(7_500_000, 13_000_000),
            posts=(1_500, 2_600),
            window=(-86_400, 6 * 86_400),
            desc="Nông sản Lai Châu - đặc sản vùng cao",
        ),
        Hashtag(
            "lienketvunglaichau",
            views=(1_800_000, 3_400_000),
            posts=(420, 800),
            window=(-86_400, 6 * 86_400),
            desc="Liên kết vùng Lai Châu",
        ),
        # The older header (views, not posts), and the stats.videoCount 0 quirk in challenge/detail.
        Hashtag(
            "ocoplaichau",
            views=(3_100_000, 4_200_000),
            posts=(900, 1_300),
            window=(-86_400, 6 * 86_400),
            markup="views",
            desc="Sản phẩm OCOP Lai Châu",
            zero_stats_video_count=True,
        ),
        # `khongtontai` is deliberately absent: the unknown-tag page and challenge/detail's not-found.
    ]
    return Scenario(
        "demo",
        seed,
        {account.unique_id: account for account in accounts},
        {tag.name: tag for tag in hashtags},
    )


DAY = 86_400.0
EVENT_WEEK_SESSION = 7_200.0


def event_week(seed: int) -> Scenario:
    """Three days of a regional product week: one two-hour live per day, each by a different account,
    a few thousand viewers at peak and close to 800,000 live views in all, while the event hashtags
    climb from millions to tens of millions of views."""
    accounts = [
        Account(
            "shop_vn",
            "Shop VN",
            250_000,
            plans=(SessionPlan(1_800, EVENT_WEEK_SESSION, 3_300, "Khai mạc tuần lễ nông sản Lai Châu"),),
            has_commerce_goods=True,
        ),
        Account(
            "nongsanlaichau_official",
            "Nông Sản Lai Châu",
            1_200_000,
            plans=(SessionPlan(DAY + 3_600, EVENT_WEEK_SESSION, 3_900, "Chợ phiên nông sản Lai Châu"),),
            has_commerce_goods=True,
        ),
        Account(
            "htx_che_laichau",
            "HTX Chè Lai Châu",
            18_500,
            plans=(SessionPlan(2 * DAY + 5_400, EVENT_WEEK_SESSION, 3_200, "Chè Shan Tuyết - bế mạc"),),
        ),
        Account("offline_shop", "Offline Shop", 1_200, kind="never_live"),
    ]
    hashtags = [
        Hashtag(
            "nongsanlaichau",
            views=(5_000_000, 60_000_000),
            posts=(1_200, 14_000),
            window=(0, 3 * DAY),
            desc="Nông sản Lai Châu - đặc sản vùng cao",
        ),
        Hashtag(
            "lienketvunglaichau",
            views=(2_000_000, 25_000_000),
            posts=(500, 6_000),
            window=(0, 3 * DAY),
            desc="Liên kết vùng Lai Châu",
        ),
    ]
    return Scenario(
        "event-week",
        seed,
        {account.unique_id: account for account in accounts},
        {tag.name: tag for tag in hashtags},
    )


SCENARIOS: dict[str, Callable[[int], Scenario]] = {"demo": demo, "event-week": event_week}
