"""One broadcast is one live-session row, whichever targets report on it (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from collector.api import PollRecord, TargetConfig
from collector.migrate import alembic_config
from collector.outcomes import Outcome
from collector.store import Store, create_engine
from schemas.models import LiveSessionRow, SampleRow
from schemas.types import LiveStatus, Metric, Provenance, Sample, SessionObservation

T0 = datetime(2025, 9, 9, 12, 0, tzinfo=UTC)
PUBLIC = TargetConfig("sp-public", "shopee", "live", 10.0, {"session_id": "198817404"})
DASHBOARD = TargetConfig("sp-shop", "shopee", "shop_dashboard", 10.0, {})
OTHER_PLATFORM = TargetConfig("tt", "tiktok", "live", 10.0, {"account": "shop_vn"})


def report(
    target: TargetConfig, at: datetime, viewers: float, provenance: Provenance, key: str = "777"
) -> PollRecord:
    sample = Sample(target.name, target.platform, target.kind, Metric.VIEWERS, viewers, at, provenance, key)
    started = T0 - timedelta(minutes=5) if provenance is Provenance.REPORTED else None
    session = SessionObservation(key, LiveStatus.LIVE, "Phiên live chè", started_at=started)
    return PollRecord(target.name, at, Outcome.OK, [sample], session)


async def test_public_page_and_dashboard_of_one_broadcast_share_one_row(database_url: str) -> None:
    store = Store(database_url, [PUBLIC, DASHBOARD, OTHER_PLATFORM])
    try:
        await store.write([report(PUBLIC, T0, 120, Provenance.OBSERVED)])
        # Same batch and later batches, both sources; and the same key on another platform.
        await store.write(
            [
                report(DASHBOARD, T0 + timedelta(seconds=1), 150, Provenance.REPORTED),
                report(PUBLIC, T0 + timedelta(seconds=10), 130, Provenance.OBSERVED),
                report(OTHER_PLATFORM, T0, 9, Provenance.OBSERVED),
            ]
        )
        await store.write([report(DASHBOARD, T0 + timedelta(seconds=11), 140, Provenance.REPORTED)])
        async with store.engine.connect() as conn:
            rows = (await conn.execute(sa.select(LiveSessionRow).order_by(LiveSessionRow.platform))).all()
            links = (await conn.execute(sa.select(SampleRow.target_id, SampleRow.session_id))).all()
    finally:
        await store.close()
    assert [(r.platform, r.session_key) for r in rows] == [("shopee", "777"), ("tiktok", "777")]
    shopee = rows[0]
    assert shopee.peak_viewers == 150 and shopee.started_at == T0 - timedelta(minutes=5)
    assert shopee.first_seen_at == T0 and shopee.last_seen_at == T0 + timedelta(seconds=11)
    by_target = {store.target_ids[t.name]: t.name for t in (PUBLIC, DASHBOARD, OTHER_PLATFORM)}
    sessions_of = {by_target[t]: s for t, s in links}
    assert sessions_of["sp-public"] == sessions_of["sp-shop"] == shopee.id
    assert sessions_of["tt"] == rows[1].id


async def _execute(database_url: str, statements: list[tuple[str, dict]], query: str = "") -> list[tuple]:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for sql, params in statements:
                await conn.execute(sa.text(sql), params)
            return [tuple(r) for r in await conn.execute(sa.text(query))] if query else []
    finally:
        await engine.dispose()


def test_the_migration_merges_rows_made_per_target(database_url: str) -> None:
    """Databases written before 0005 hold one row per target and broadcast; the upgrade merges them."""
    config = alembic_config(database_url)
    command.upgrade(config, "0004")
    at = datetime(2025, 9, 9, 12, 0)  # naive: SQLite's column type; PostgreSQL takes it as UTC here
    if "postgresql" in database_url:
        at = at.replace(tzinfo=UTC)
    statements: list[tuple[str, dict]] = []
    for id_, name, platform in ((1, "a", "shopee"), (2, "b", "shopee"), (3, "c", "tiktok")):
        statements.append(
            (
                "INSERT INTO targets (id, name, platform, kind, params, created_at) "
                "VALUES (:id, :name, :platform, 'live', '{}', :at)",
                {"id": id_, "name": name, "platform": platform, "at": at},
            )
        )
    for id_, target, peak, minutes in ((10, 1, 120.0, 0), (11, 2, 150.0, 5), (12, 3, 9.0, 0)):
        statements += [
            (
                "INSERT INTO live_sessions (id, target_id, session_key, first_seen_at, last_seen_at, "
                "last_status, peak_viewers) VALUES (:id, :t, '777', :at, :seen, 'live', :peak)",
                {"id": id_, "t": target, "at": at, "seen": at + timedelta(minutes=minutes), "peak": peak},
            ),
            (
                "INSERT INTO samples (target_id, metric, observed_at, value, provenance, session_id) "
                "VALUES (:t, 'viewers', :at, :peak, 'observed', :id)",
                {"t": target, "at": at, "peak": peak, "id": id_},
            ),
        ]
    asyncio.run(_execute(database_url, statements))
    command.upgrade(config, "head")
    rows = asyncio.run(
        _execute(database_url, [], "SELECT id, platform, peak_viewers FROM live_sessions ORDER BY id")
    )
    links = asyncio.run(
        _execute(database_url, [], "SELECT target_id, session_id FROM samples ORDER BY target_id")
    )
    assert rows == [(10, "shopee", 150.0), (12, "tiktok", 9.0)]
    assert links == [(1, 10), (2, 10), (3, 12)]
