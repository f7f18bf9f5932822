"""One broadcast known by several ids: a public live room id and a shop API's live id.

Sources that name the broadcasting account (`SessionObservation.account`) register each id under
their kind (`live_session_keys`). A new id of one kind joins the row of the same account's broadcast
that overlaps it in time and has no id of that kind yet, so both sources write one row and a report
counts the broadcast once; both ids are kept.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from schemas.models import LiveSessionKeyRow, LiveSessionRow, TargetRow
from schemas.types import SessionObservation

# Two sources' clocks and polling rhythms disagree by a little about when a broadcast ended (or was
# last seen); an account's next broadcast can start a few minutes after the last one ends.
SLACK = timedelta(minutes=2)
# Both sources give the start of the same broadcast: a shop's live and a public room that started
# further apart than this are different broadcasts, however they overlap.
SAME_START = timedelta(minutes=10)


async def find(
    conn: AsyncConnection, platform: str, source: str, obs: SessionObservation, observed_at: datetime
) -> int | None:
    """The row of the broadcast `obs` (of a `source` kind of target) is part of, or None for a new one."""
    known = await conn.scalar(
        select(LiveSessionKeyRow.session_id).where(
            LiveSessionKeyRow.platform == platform,
            LiveSessionKeyRow.source == source,
            LiveSessionKeyRow.session_key == obs.key,
        )
    )
    if known is not None:
        return known
    same_key = await conn.scalar(
        select(LiveSessionRow.id).where(
            LiveSessionRow.platform == platform, LiveSessionRow.session_key == obs.key
        )
    )
    if same_key is not None or not obs.account:
        return same_key
    keyed_by_source = select(LiveSessionKeyRow.session_id).where(LiveSessionKeyRow.source == source)
    candidates = await conn.execute(
        select(
            LiveSessionRow.id,
            LiveSessionRow.started_at,
            LiveSessionRow.first_seen_at,
            LiveSessionRow.ended_at,
            LiveSessionRow.last_seen_at,
        )
        .join(TargetRow, LiveSessionRow.target_id == TargetRow.id)
        .where(
            LiveSessionRow.platform == platform,
            LiveSessionRow.account == obs.account,
            TargetRow.kind != source,
            LiveSessionRow.id.not_in(keyed_by_source),
        )
    )
    start = obs.started_at or observed_at
    end = obs.ended_at or observed_at
    overlapping = [
        (abs((began or seen) - start), id_)
        for id_, began, seen, ended, last in candidates
        if (began or seen) <= end + SLACK
        and start <= (ended or last) + SLACK
        and (began is None or obs.started_at is None or abs(began - obs.started_at) <= SAME_START)
    ]
    return min(overlapping)[1] if overlapping else None


async def register(
    conn: AsyncConnection,
    insert: Callable[..., Any],
    session_id: int,
    platform: str,
    source: str,
    obs: SessionObservation,
) -> None:
    """Remember `obs.key` as the `source` id of the broadcast, and its account."""
    await conn.execute(
        insert(LiveSessionKeyRow)
        .values(session_id=session_id, platform=platform, source=source, session_key=obs.key)
        .on_conflict_do_nothing()
    )
    await conn.execute(
        update(LiveSessionRow)
        .where(LiveSessionRow.id == session_id, LiveSessionRow.account.is_(None))
        .values(account=obs.account)
    )
