"""Samples carry no foreign keys (migration 0010), yet removing a target still removes its samples and
removing a broadcast still clears its samples' link to it, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from collector.api import PollRecord
from collector.config import TargetConfig
from collector.outcomes import Outcome
from collector.store import Store
from schemas.models import LiveSessionRow, SampleRow, TargetRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)
TARGETS = [TargetConfig(name, "tiktok", "live", 10.0, {}) for name in ("gone", "kept")]


def polls(target: str, room: str, start: datetime = T0) -> list[PollRecord]:
    records = []
    for i in range(3):
        at = start + timedelta(seconds=10 * i)
        samples = [
            Sample(target, "tiktok", "live", metric, float(i), at, Provenance.OBSERVED, room)
            for metric in (Metric.VIEWERS, Metric.LIKES)
        ]
        records.append(PollRecord(target, at, Outcome.OK, samples, SessionObservation(room, LiveStatus.LIVE)))
    return records


async def _after_deleting_a_target(database_url: str) -> dict[str, list[tuple[str, str | None]]]:
    """Samples left per target name (metric, room) after `gone` is deleted, as an operator would."""
    store = Store(database_url, TARGETS)
    try:
        # "gone" sees room-1 first, so the broadcast's row belongs to it; "kept" reports on it too.
        await store.write(polls("gone", "room-1"))
        await store.write(polls("kept", "room-1") + polls("kept", "room-2", T0 + timedelta(hours=1)))
        async with store.engine.begin() as conn:
            await conn.execute(text("DELETE FROM targets WHERE name = 'gone'"))
        async with store.engine.connect() as conn:
            rows = await conn.execute(
                select(SampleRow.target_id, SampleRow.metric, LiveSessionRow.session_key).outerjoin(
                    LiveSessionRow, SampleRow.session_id == LiveSessionRow.id
                )
            )
            names = dict((await conn.execute(select(TargetRow.id, TargetRow.name))).all())
            unlinked = await conn.scalar(
                text(
                    "SELECT count(*) FROM samples WHERE session_id IS NOT NULL "
                    "AND session_id NOT IN (SELECT id FROM live_sessions)"
                )
            )
        assert unlinked == 0, "a sample points at a broadcast that is gone"
        left: dict[str, list[tuple[str, str | None]]] = {}
        for target_id, metric, room in rows:
            left.setdefault(names.get(target_id, f"orphan {target_id}"), []).append((metric, room))
        return left
    finally:
        await store.close()


def test_deleting_a_target_deletes_its_samples_and_unlinks_its_broadcasts(database_url: str) -> None:
    left = asyncio.run(_after_deleting_a_target(database_url))
    # "kept" keeps all its samples; the room-1 broadcast went with "gone" (its row's target), so the
    # samples "kept" took of it stay, without the link, as `ON DELETE SET NULL` left them.
    assert sorted(left) == ["kept"]
    assert Counter(left["kept"]) == {
        ("likes", None): 3,
        ("viewers", None): 3,
        ("likes", "room-2"): 3,
        ("viewers", "room-2"): 3,
    }
