"""Counter curves: viewers, cumulative views/likes/shares/follows, followers and hashtag views/posts
as pure functions.

Every value depends only on (seed, session or hashtag, scenario second), so the simulator, its
ground-truth endpoint and the tests all agree on the value at any instant.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from functools import lru_cache

from simulator.scenario import Account, Hashtag, Scenario, Session, latest_session, seeded_unit

STATUS_LIVE = 2
STATUS_PAUSED = 3
STATUS_ENDED = 4

BUCKET_SECONDS = 5.0  # noise changes every 5 s, like a real room's viewer count ticking
CUMULATIVE = ("views", "likes", "shares", "follows")
# Arrivals per current viewer per second; views ~ one new viewer per 90 viewer-seconds.
RATES = {"views": 1 / 90, "likes": 0.03, "shares": 0.0004, "follows": 0.00015}
PAUSED_ENGAGEMENT = 0.1  # while paused, likes/shares/follows almost stop
PAUSED_AUDIENCE = 0.4  # and most viewers drift away until the stream resumes
FOLLOWER_GROWTH_PER_SECOND = 1e-6  # of the base follower count: slow background growth
_PREFIX_CACHE_LIMIT = 256


@dataclass(frozen=True)
class SessionCounters:
    """What a room shows at one instant."""

    status: int
    viewers: int
    views: int
    likes: int
    shares: int
    follows: int


@dataclass(frozen=True)
class AccountState:
    """An account at one instant: its latest broadcast (if any) and that broadcast's counters."""

    account: Account
    followers: int
    session: Session | None
    counters: SessionCounters | None


@lru_cache(maxsize=65_536)
def _bucket_noise(seed: int, room_id: str, bucket: int) -> tuple[float, ...]:
    """Five reproducible uniforms for one 5 s bucket: viewers, then each cumulative counter."""
    digest = hashlib.blake2b(f"{seed}:{room_id}:{bucket}".encode(), digest_size=20).digest()
    return tuple(int.from_bytes(digest[i : i + 4], "big") / 2**32 for i in range(0, 20, 4))


def is_paused(session: Session, into: float) -> bool:
    """Whether `into` seconds after the start falls in the session's scripted pause."""
    return session.pause is not None and session.pause[0] <= into < session.pause[0] + session.pause[1]


def viewer_envelope(session: Session, into: float) -> float:
    """Smooth viewer curve: ramp up, a mid-session dip, a fall near the end."""
    duration = session.duration
    if into < 0 or into >= duration:
        return 0.0
    ramp = min(300.0, 0.15 * duration)
    level = 0.15 + 0.85 * min(1.0, into / ramp)
    dip_centre, dip_half_width = 0.55 * duration, 0.05 * duration
    level *= 1 - 0.35 * max(0.0, 1 - abs(into - dip_centre) / dip_half_width)
    tail = min(300.0, 0.15 * duration)
    if into > duration - tail:
        level *= max(0.02, (duration - into) / tail)
    if is_paused(session, into):
        level *= PAUSED_AUDIENCE
    return session.peak_viewers * level


def _bucket_arrivals(seed: int, session: Session, bucket: int) -> tuple[float, ...]:
    """New views/likes/shares/follows during one bucket (noisy, never negative)."""
    into = bucket * BUCKET_SECONDS
    audience = viewer_envelope(session, into) * BUCKET_SECONDS
    engagement = PAUSED_ENGAGEMENT if is_paused(session, into) else 1.0
    noise = _bucket_noise(seed, session.room_id, bucket)
    arrivals = []
    for name, unit in zip(CUMULATIVE, noise[1:], strict=True):
        scale = 1.0 if name == "views" else engagement
        arrivals.append(audience * RATES[name] * scale * (0.5 + unit))
    return tuple(arrivals)


# (seed, session) -> prefix sums per bucket; an implementation detail, results stay pure.
_prefix_cache: dict[tuple[int, Session], list[tuple[float, ...]]] = {}


def _prefix_sums(seed: int, session: Session, buckets: int) -> list[tuple[float, ...]]:
    """Cumulative arrivals before each bucket, extended on demand up to `buckets`."""
    key = (seed, session)
    sums = _prefix_cache.get(key)
    if sums is None:
        if len(_prefix_cache) >= _PREFIX_CACHE_LIMIT:
            _prefix_cache.pop(next(iter(_prefix_cache)))
        # Views start at the audience already present when the room opens.
        sums = _prefix_cache[key] = [(viewer_envelope(session, 0.0), 0.0, 0.0, 0.0)]
    while len(sums) <= buckets:
        bucket = len(sums) - 1
        arrivals = _bucket_arrivals(seed, session, bucket)
        sums.append(tuple(total + new for total, new in zip(sums[-1], arrivals, strict=True)))
    return sums


def session_counters(seed: int, session: Session, elapsed: float) -> SessionCounters:
    """The room's status and counters at scenario second `elapsed` (frozen after the end)."""
    into = min(max(0.0, elapsed - session.start), session.duration)
    if elapsed >= session.end:
        status = STATUS_ENDED
    elif is_paused(session, into):
        status = STATUS_PAUSED
    else:
        status = STATUS_LIVE
    bucket = int(into // BUCKET_SECONDS)
    fraction = (into - bucket * BUCKET_SECONDS) / BUCKET_SECONDS
    sums = _prefix_sums(seed, session, bucket + 1)
    # Interpolating inside the current bucket keeps totals non-decreasing between buckets.
    totals = [
        math.floor(min(after, before + (after - before) * fraction))
        for before, after in zip(sums[bucket], sums[bucket + 1], strict=True)
    ]
    viewers = 0
    if status != STATUS_ENDED:
        unit = _bucket_noise(seed, session.room_id, bucket)[0]
        viewers = max(0, round(viewer_envelope(session, into) * (0.92 + 0.16 * unit)))
    return SessionCounters(status, viewers, *totals)


def followers_at(account: Account, elapsed: float) -> int:
    """Follower count: the scripted base plus slow linear growth since scenario start."""
    return account.followers + math.floor(max(0.0, elapsed) * account.followers * FOLLOWER_GROWTH_PER_SECOND)


def account_state(scenario: Scenario, account: Account, elapsed: float) -> AccountState:
    """The account at scenario second `elapsed`."""
    session = latest_session(scenario, account, elapsed)
    counters = None if session is None else session_counters(scenario.seed, session, elapsed)
    return AccountState(account, followers_at(account, elapsed), session, counters)


@dataclass(frozen=True)
class HashtagCounters:
    """What a hashtag shows at one instant."""

    views: int
    posts: int


def hashtag_progress(tag: Hashtag, elapsed: float) -> float:
    """How far through its rise the tag is, 0..1: half linear, half smoothstep, so it always climbs."""
    start, end = tag.window
    u = min(1.0, max(0.0, (elapsed - start) / (end - start)))
    return 0.5 * u + 0.5 * u * u * (3 - 2 * u)


def hashtag_counters(seed: int, tag: Hashtag, elapsed: float) -> HashtagCounters:
    """The tag's views and posts at scenario second `elapsed`; the seed scales them by 0.95..1.05."""
    scale = 0.95 + 0.1 * seeded_unit(seed, "hashtag", tag.name)
    progress = hashtag_progress(tag, elapsed)

    def at(first: int, last: int) -> int:
        return math.floor(scale * (first + (last - first) * progress))

    return HashtagCounters(at(*tag.views), at(*tag.posts))


def compact_count(value: int) -> str:
    """TikTok-style abbreviation for `total_user_desp`: 56789 -> "56.7K" (truncated, as in 6)."""
    for threshold, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if value >= threshold:
            tenths = value * 10 // threshold
            whole, decimal = divmod(tenths, 10)
            return f"{whole}{suffix}" if decimal == 0 else f"{whole}.{decimal}{suffix}"
    return str(value)
