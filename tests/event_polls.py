"""The simulator's `event-week` scenario polled offline: the records a collector would hand its writer.

Three TikTok streamers (one two-hour broadcast a day each), an account that never goes live and the two
event hashtags, polled every `interval` seconds with the scheduler's ±10% jitter. The values are the
simulator's own (`simulator.counters`), the readings the ones the TikTok adapter gives for each state
(a live room's counters and status; a not-live account's status and followers; a tag's views and
posts), without HTTP or parsing in between, so hours of an event replay in seconds.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from collector.api import PollRecord, TargetConfig
from collector.outcomes import Outcome
from schemas.types import (
    LIVE_STATUS_CODE,
    LiveStatus,
    Metric,
    Provenance,
    Reading,
    Sample,
    SessionObservation,
)
from simulator.counters import STATUS_ENDED, STATUS_PAUSED, account_state, hashtag_counters
from simulator.scenario import event_week, seeded_unit

SEED = 7
START = datetime(2026, 12, 12, tzinfo=UTC)  # scenario second 0
CAMPAIGN = "event-week"
SCENARIO = event_week(SEED)


def event_targets(interval: float = 15.0) -> list[TargetConfig]:
    accounts = [
        TargetConfig(f"tt-{a}", "tiktok", "live", interval, {"account": a}, CAMPAIGN) for a in SCENARIO.tiktok
    ]
    tags = [
        TargetConfig(f"tag-{t}", "tiktok", "hashtag", interval, {"tag": f"#{t}"}, CAMPAIGN)
        for t in SCENARIO.hashtags
    ]
    return accounts + tags


def event_polls(until: float, interval: float = 15.0, since: float = 0.0) -> Iterator[PollRecord]:
    """Every target's polls from scenario second `since` to `until`, in time order."""
    targets = event_targets(interval)
    polls = []
    for i, target in enumerate(targets):
        n = 0
        while (second := since + n * interval) < until:
            jitter = (seeded_unit(SEED, target.name, n) - 0.5) * 0.2 * interval
            polls.append((second + jitter, i))
            n += 1
    for second, i in sorted(polls):
        yield _poll(targets[i], second)


def _poll(target: TargetConfig, second: float) -> PollRecord:
    at = START + timedelta(seconds=second)
    if target.kind == "hashtag":
        tag = hashtag_counters(SEED, SCENARIO.hashtags[target.params["tag"].lstrip("#")], second)
        readings = [Reading(Metric.HASHTAG_VIEWS, tag.views), Reading(Metric.HASHTAG_POSTS, tag.posts)]
        return _record(target, at, Outcome.OK, readings, None)
    state = account_state(SCENARIO, SCENARIO.tiktok[target.params["account"]], second)
    session, counters = state.session, state.counters
    if session is None or counters is None or counters.status == STATUS_ENDED:
        status = LiveStatus.ENDED if session is not None else LiveStatus.UNKNOWN
        readings = [
            Reading(Metric.LIVE_STATUS, LIVE_STATUS_CODE[status]),
            Reading(Metric.FOLLOWERS, state.followers),
        ]
        observation = SessionObservation(session.room_id, LiveStatus.ENDED) if session is not None else None
        return _record(target, at, Outcome.NOT_LIVE, readings, observation)
    status = LiveStatus.PAUSED if counters.status == STATUS_PAUSED else LiveStatus.LIVE
    readings = [
        Reading(Metric.VIEWERS, counters.viewers),
        # The adapter reads a zero counter as unknown (`zero_is_unknown`) and leaves it out.
        *(
            Reading(metric, value)
            for metric, value in (
                (Metric.VIEWS, counters.views),
                (Metric.LIKES, counters.likes),
                (Metric.SHARES, counters.shares),
                (Metric.NEW_FOLLOWERS, counters.follows),
            )
            if value
        ),
        Reading(Metric.LIVE_STATUS, LIVE_STATUS_CODE[status]),
    ]
    started = START + timedelta(seconds=session.start)
    observation = SessionObservation(session.room_id, status, session.title, started)
    return _record(target, at, Outcome.OK, readings, observation)


def _record(
    target: TargetConfig,
    at: datetime,
    outcome: Outcome,
    readings: list[Reading],
    session: SessionObservation | None,
) -> PollRecord:
    key = session.key if session is not None else None
    samples = [
        Sample(
            target.name, target.platform, target.kind, r.metric, float(r.value), at, Provenance.OBSERVED, key
        )
        for r in readings
    ]
    record = PollRecord(target.name, at, outcome, samples, session)
    record.next_due_at = at + timedelta(seconds=target.interval)
    return record
