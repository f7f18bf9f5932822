"""The database side: target registration, batched idempotent writes, and export queries."""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Integer, String, Text, case, event, func, make_url, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.types import TypeEngine

from collector import links
from collector.api import PollRecord, RawResponse, TargetConfig
from collector.batch_sql import batch_statement, sqlite_time
from collector.driver_statements import DriverStatements
from collector.outcomes import Outcome
from schemas.models import LiveSessionRow, RawSnapshotRow, SampleRow, TargetRow, TargetStateRow, UtcDateTime
from schemas.types import Metric, Sample, SessionObservation

log = logging.getLogger(__name__)


SAMPLE_COLUMNS = ("target_id", "metric", "observed_at", "value", "provenance", "session_id", "currency")
_SAMPLE_KEY = "ON CONFLICT (target_id, metric, observed_at) DO NOTHING"
SQLITE_SAMPLE_INSERT = (
    f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?) {_SAMPLE_KEY}"
)
POSTGRES_SAMPLE_INSERT = (
    f"INSERT INTO samples ({', '.join(SAMPLE_COLUMNS)}) SELECT * FROM unnest($1::integer[], "
    f"$2::varchar[], $3::timestamptz[], $4::float8[], $5::varchar[], $6::integer[], $7::varchar[]) {_SAMPLE_KEY}"
)


async def _postgres_insert_samples(conn: AsyncConnection, columns: list[list[Any]]) -> int:
    """A binary COPY straight into `samples`, in a savepoint: the cheapest way in (no conflict
    arbitration, no per-row plan). A sample already stored (a spool replay, a retried batch whose first
    commit did land) fails the COPY on the primary key; the savepoint is rolled back and the batch goes
    in again by one `INSERT … SELECT unnest(…) ON CONFLICT DO NOTHING`, which skips what is there."""
    rows = list(zip(*columns, strict=True))
    driver = (await conn.get_raw_connection()).driver_connection
    try:
        # begin_nested starts the batch's transaction if needed, so the COPY is part of it.
        async with conn.begin_nested():
            status = await driver.copy_records_to_table("samples", records=rows, columns=SAMPLE_COLUMNS)
    except asyncpg.UniqueViolationError:
        result = await conn.exec_driver_sql(POSTGRES_SAMPLE_INSERT, tuple(columns))
        return max(result.rowcount, 0)
    return int(status.rsplit(" ", 1)[1])  # "COPY <rows>"


# A replayed older record (the spool, a replica that died holding the target) never overwrites a newer state.
_STATE_UPSERT = (
    "ON CONFLICT (target_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at "
    "WHERE target_state.updated_at <= excluded.updated_at"
)
SQLITE_STATE_UPSERT = (
    f"INSERT INTO target_state (target_id, state, updated_at) VALUES (?, ?, ?) {_STATE_UPSERT}"
)
POSTGRES_STATE_UPSERT = (
    "INSERT INTO target_state (target_id, state, updated_at) SELECT t, s::json, u FROM "
    f"unnest($1::integer[], $2::text[], $3::timestamptz[]) AS x(t, s, u) {_STATE_UPSERT}"
)


def _session_merge(new: Any) -> dict[str, Any]:
    """The stored broadcast merged with `new` (the upsert's `excluded` row), by the rules of
    `Store._merge_session`; every expression reads the row as it was before the update."""
    old = LiveSessionRow.__table__.c
    newer = new.last_seen_at >= old.last_seen_at
    return {
        "last_seen_at": case((newer, new.last_seen_at), else_=old.last_seen_at),
        "last_status": case((newer, new.last_status), else_=old.last_status),
        "peak_viewers": case(
            (or_(old.peak_viewers.is_(None), new.peak_viewers > old.peak_viewers), new.peak_viewers),
            else_=old.peak_viewers,
        ),
        "ended_at": func.coalesce(new.ended_at, old.ended_at),
        "started_at": case(
            (or_(old.started_at.is_(None), new.started_at < old.started_at), new.started_at),
            else_=old.started_at,
        ),
        "title": func.coalesce(func.nullif(new.title, ""), old.title),
        "account": func.coalesce(old.account, new.account),
    }


# The parameters of a target's poll status update, one row per target in a batch.
_OUTCOME_PARAMS: dict[str, TypeEngine[Any]] = {
    "b_id": Integer(),
    "b_outcome": String(),
    "b_at": UtcDateTime(),
    "b_detail": Text(),
    "b_due": UtcDateTime(),
    "b_success": UtcDateTime(),
    "b_expires": UtcDateTime(),
}


def _outcome_update(new: Mapping[str, Any]) -> Any:
    # A replayed older record must not move a target's status back in time.
    newer = or_(TargetRow.last_outcome_at.is_(None), TargetRow.last_outcome_at <= new["b_at"])
    return (
        update(TargetRow)
        .where(TargetRow.id == new["b_id"], newer)
        .values(
            last_outcome=new["b_outcome"],
            last_outcome_at=new["b_at"],
            last_detail=new["b_detail"],
            next_due_at=new["b_due"],
            last_success_at=func.coalesce(new["b_success"], TargetRow.last_success_at),
            credentials_expire_at=func.coalesce(new["b_expires"], TargetRow.credentials_expire_at),
        )
    )


# A known broadcast merged by id with the batch's `n_*` values (the upsert's rules).
_SESSION_PARAMS: dict[str, TypeEngine[Any]] = {
    f"n_{c.name}": c.type
    for c in LiveSessionRow.__table__.c
    if c.name
    in ("id", "title", "started_at", "ended_at", "last_seen_at", "last_status", "peak_viewers", "account")
}


def _session_update(new: Mapping[str, Any]) -> Any:
    merged = _session_merge(SimpleNamespace(**{name[2:]: new[name] for name in _SESSION_PARAMS}))
    return update(LiveSessionRow).where(LiveSessionRow.id == new["n_id"]).values(**merged)


@dataclass(frozen=True, slots=True)
class ExportRow:
    observed_at: datetime
    platform: str
    target: str
    metric: str
    value: float
    provenance: str
    session_id: str | None


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets `collector export` read while the service writes. FULL fsyncs the WAL at every commit:
    # the writer acknowledges a batch in the spool once its commit returns, and the spool then forgets
    # it, so the commit must survive a machine crash too. NORMAL is durable only at checkpoints: a power
    # cut could roll back batches the spool had already let go.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    # A SQLite connection is a file handle, not a socket a server can drop: a ping per checkout (a
    # statement and its thread hops, every batch) would find nothing.
    sqlite_file = make_url(database_url).get_backend_name() == "sqlite"
    engine = create_async_engine(database_url, pool_pre_ping=not sqlite_file)
    if engine.dialect.name == "sqlite":
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


class Store:
    def __init__(self, database_url: str, targets: Iterable[TargetConfig] = ()) -> None:
        self.database_url = database_url
        self.targets = list(targets)
        self.engine = create_engine(database_url)
        self._insert = sqlite.insert if self.engine.dialect.name == "sqlite" else postgresql.insert
        upsert = self._insert(LiveSessionRow)
        self._session_upsert = upsert.on_conflict_do_update(
            index_elements=["platform", "session_key"], set_=_session_merge(upsert.excluded)
        ).returning(LiveSessionRow.id, LiveSessionRow.platform, LiveSessionRow.session_key)
        self._session_update = batch_statement(_session_update, _SESSION_PARAMS, self.engine.dialect)
        self._outcome_update = batch_statement(_outcome_update, _OUTCOME_PARAMS, self.engine.dialect)
        self.target_ids: dict[str, int] = {}
        self.target_platforms: dict[str, str] = {}
        self.target_kinds: dict[str, str] = {}
        # A broadcast's row by (platform, session key): every target reporting on it shares the row.
        self._session_ids: dict[tuple[str, str], int] = {}
        self._ready = False
        self._unknown_warned: set[str] = set()

    async def prepare(self) -> None:
        """Migrate the schema and register the targets; retried by `write` until it succeeds."""
        from collector.migrate import upgrade

        # Alembic runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(upgrade, self.database_url)
        await self.sync_targets(self.targets, datetime.now(UTC))
        self._ready = True

    async def ensure_targets(self) -> None:
        """Every configured target has its row: a fleet leases only targets that do, so one added by a
        reload, or configured while the database was away, must not wait for a write to create it."""
        if self._ready:
            await self.sync_targets(self.targets, datetime.now(UTC))
        else:
            await self.prepare()

    async def close(self) -> None:
        await self.engine.dispose()

    async def sync_targets(self, targets: Iterable[TargetConfig], now: datetime) -> None:
        """Register configured targets (new ones inserted, changed ones updated) and cache their ids."""
        async with self.engine.begin() as conn:
            for t in targets:
                values = {
                    "platform": t.platform,
                    "kind": t.kind,
                    "params": dict(t.params),
                    "campaign": t.campaign,
                }
                stmt = self._insert(TargetRow).values(name=t.name, created_at=now, **values)
                await conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=values))
            rows = (
                await conn.execute(select(TargetRow.name, TargetRow.id, TargetRow.platform, TargetRow.kind))
            ).all()
            self.target_ids = {name: id_ for name, id_, _, _ in rows}
            self.target_platforms = {name: platform for name, _, platform, _ in rows}
            self.target_kinds = {name: kind for name, _, _, kind in rows}

    async def write(self, records: Sequence[PollRecord], *, poll_outcomes: bool = True) -> int:
        """Write a batch in one transaction; returns the number of new sample rows. A backfill's records
        (`poll_outcomes=False`) leave the targets' poll status alone: they are not polls."""
        if not self._ready:
            await self.prepare()
        await self._register_new_targets(records)
        records = [r for r in records if self._known(r.target)]
        # Session ids found or created in this transaction join the cache only once it commits: a
        # rolled-back insert must not leave the cache pointing at a row that does not exist.
        sessions: dict[tuple[str, str], int] = {}
        async with self.engine.begin() as conn:
            statements = DriverStatements(conn)
            await self._upsert_sessions(conn, statements, records, sessions)
            columns = self._sample_columns([s for r in records for s in r.samples], sessions)
            samples = await self._insert_samples(statements, columns) if columns[0] else None
            snapshots = [self._snapshot_row(r, raw, reason) for r in records for raw, reason in r.snapshots]
            if snapshots:
                stmt = self._insert(RawSnapshotRow).on_conflict_do_nothing(
                    index_elements=["target_id", "fetched_at", "url"]
                )
                await conn.execute(stmt, snapshots)
            if poll_outcomes:
                await self._record_outcomes(statements, records)
            await self._upsert_states(statements, records)
            await statements.finish()
        self._session_ids.update(sessions)
        return 0 if samples is None else statements.rowcount(samples)

    async def load_target_states(self, names: Sequence[str]) -> dict[str, Any]:
        """The stored state of each of these targets that has one, by target name."""
        found: dict[str, Any] = {}
        async with self.engine.connect() as conn:
            for i in range(0, len(names), 1000):  # under every backend's limit of bound parameters
                result = await conn.execute(
                    select(TargetRow.name, TargetStateRow.state)
                    .join(TargetStateRow, TargetStateRow.target_id == TargetRow.id)
                    .where(TargetRow.name.in_(names[i : i + 1000]))
                )
                found.update((name, state) for name, state in result)
        return found

    async def replace_samples(self, records: Sequence[PollRecord]) -> dict[str, int]:
        """Write re-derived samples over the stored ones with the same key (target, metric, time);
        returns how many values were added, changed and unchanged. Used by `backfill reprocess`."""
        if not self._ready:
            await self.prepare()
        records = [r for r in records if self._known(r.target)]
        counts = {"added": 0, "changed": 0, "unchanged": 0}
        sessions: dict[tuple[str, str], int] = {}
        async with self.engine.begin() as conn:
            statements = DriverStatements(conn)
            await self._upsert_sessions(conn, statements, records, sessions)
            await statements.finish()
            columns = self._sample_columns([s for r in records for s in r.samples], sessions)
            rows = [dict(zip(SAMPLE_COLUMNS, values, strict=True)) for values in zip(*columns, strict=True)]
            if not rows:
                return counts
            stored = await conn.execute(
                select(SampleRow.target_id, SampleRow.metric, SampleRow.observed_at, SampleRow.value,
                       SampleRow.provenance, SampleRow.currency)
                .where(SampleRow.target_id.in_({r["target_id"] for r in rows}))
                .where(SampleRow.observed_at.in_({r["observed_at"] for r in rows}))
            )  # fmt: skip
            existing = {(t, m, at): (v, p, c) for t, m, at, v, p, c in stored}
            new_rows = []
            for row in rows:
                found = existing.get((row["target_id"], row["metric"], row["observed_at"]))
                if found is None:
                    new_rows.append(row)
                elif found == (row["value"], row["provenance"], row["currency"]):
                    counts["unchanged"] += 1
                else:
                    counts["changed"] += 1
                    values = {k: row[k] for k in ("value", "provenance", "currency", "session_id")}
                    key = (SampleRow.target_id, SampleRow.metric, SampleRow.observed_at)
                    await conn.execute(
                        update(SampleRow).where(*(c == row[c.key] for c in key)).values(**values)
                    )
            if new_rows:
                stmt = self._insert(SampleRow).on_conflict_do_nothing(
                    index_elements=["target_id", "metric", "observed_at"]
                )
                await conn.execute(stmt, new_rows)
                counts["added"] += len(new_rows)
        self._session_ids.update(sessions)
        return counts

    async def _register_new_targets(self, records: Sequence[PollRecord]) -> None:
        """Targets added by a reload while the database was away are registered with their first batch."""
        missing = {r.target for r in records} - self.target_ids.keys()
        if added := [t for t in self.targets if t.name in missing]:
            await self.sync_targets(added, datetime.now(UTC))

    def _known(self, target: str) -> bool:
        if target in self.target_ids:
            return True
        # Only a spooled record of a target never registered in this database lands here (removed
        # targets keep their rows): there is nowhere to put it.
        if target not in self._unknown_warned:
            self._unknown_warned.add(target)
            log.warning("dropping buffered records of %r: not a target of this database", target)
        return False

    async def _upsert_sessions(
        self,
        conn: AsyncConnection,
        statements: DriverStatements,
        records: Sequence[PollRecord],
        sessions: dict[tuple[str, str], int],
    ) -> None:
        """Every broadcast the batch reports on, merged in memory first. Broadcasts already known (or
        linked across sources by account) are updated by id in one executemany; new ones without an
        account are upserted in one statement: a round trip or two per batch, not two per record."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        first: dict[tuple[str, str], PollRecord] = {}
        for record in records:
            if record.session is not None:
                key = self._merge_session(merged, record, record.session)
                first.setdefault(key, record)
        by_id, new = [], []
        for key, row in merged.items():
            session_id = sessions.get(key) or self._session_ids.get(key)
            if session_id is None and row["account"]:  # rare: once per broadcast and process
                session_id = await self._link_session(conn, first[key], row)
            if session_id is None:
                new.append(row)
            else:
                sessions[key] = session_id
                by_id.append({f"n_{name}": value for name, value in row.items()} | {"n_id": session_id})
        if by_id:
            await statements.execute(self._session_update.sql, self._session_update.driver_params(by_id))
        if new:  # executemany: the statement compiles once, the driver batches the rows
            result = await conn.execute(self._session_upsert, new)
            for session_id, platform, key in result:
                sessions[(platform, key)] = session_id

    async def _link_session(self, conn: AsyncConnection, record: PollRecord, row: dict[str, Any]) -> int:
        """The row of a broadcast whose source names its account: found across sources, or new."""
        obs = record.session
        assert obs is not None
        platform, source = row["platform"], self.target_kinds[record.target]
        session_id = await links.find(conn, platform, source, obs, record.observed_at)
        if session_id is None:
            session_id = await self._insert_session(conn, record, platform, row["peak_viewers"])
        await links.register(conn, self._insert, session_id, platform, source, obs)
        return session_id

    def _merge_session(
        self, merged: dict[tuple[str, str], dict[str, Any]], record: PollRecord, obs: SessionObservation
    ) -> tuple[str, str]:
        # Sources report out of order (a spool replay, a slower dashboard): the newest report decides
        # the status, the earliest start any source gives stands, the last title and end given win.
        platform = self.target_platforms[record.target]
        viewers = [s.value for s in record.samples if s.metric is Metric.VIEWERS]
        peak = max(viewers) if viewers else None
        key = (platform, obs.key)
        row = merged.get(key)
        if row is None:
            merged[key] = {
                "target_id": self.target_ids[record.target],
                "platform": platform,
                "session_key": obs.key,
                "title": obs.title,
                "started_at": obs.started_at,
                "ended_at": obs.ended_at,
                "first_seen_at": record.observed_at,
                "last_seen_at": record.observed_at,
                "last_status": obs.status.value,
                "peak_viewers": peak,
                "account": obs.account,
            }
            return key
        if record.observed_at >= row["last_seen_at"]:
            row["last_seen_at"], row["last_status"] = record.observed_at, obs.status.value
        row["first_seen_at"] = min(row["first_seen_at"], record.observed_at)
        if peak is not None and (row["peak_viewers"] is None or peak > row["peak_viewers"]):
            row["peak_viewers"] = peak
        if obs.ended_at is not None:
            row["ended_at"] = obs.ended_at
        if obs.started_at is not None and (row["started_at"] is None or obs.started_at < row["started_at"]):
            row["started_at"] = obs.started_at
        if obs.title:
            row["title"] = obs.title
        row["account"] = row["account"] or obs.account
        return key

    async def _upsert_states(self, statements: DriverStatements, records: Sequence[PollRecord]) -> None:
        """Each target's newest state in the batch, in one statement."""
        newest: dict[str, PollRecord] = {}
        for record in records:
            if record.state is not None:
                held = newest.get(record.target)
                if held is None or record.observed_at >= held.observed_at:
                    newest[record.target] = record
        if not newest:
            return
        ids = [self.target_ids[name] for name in newest]
        states = [orjson.dumps(r.state).decode() for r in newest.values()]
        times = [r.observed_at for r in newest.values()]
        if self.engine.dialect.name == "sqlite":
            await statements.execute(
                SQLITE_STATE_UPSERT, list(zip(ids, states, [sqlite_time(at) for at in times], strict=True))
            )
        else:
            await statements.execute(POSTGRES_STATE_UPSERT, (ids, states, times))

    async def _insert_samples(self, statements: DriverStatements, columns: list[list[Any]]) -> int:
        """The batch's samples (one list per column of SAMPLE_COLUMNS) in one driver call, past
        SQLAlchemy's per-value processing; its row count (`statements.rowcount` of the returned index)
        is how many were new (a replayed sample hits the unique key and is skipped)."""
        if self.engine.dialect.name == "sqlite":
            columns[2] = [sqlite_time(at) for at in columns[2]]
            return await statements.execute(SQLITE_SAMPLE_INSERT, list(zip(*columns, strict=True)))
        return await statements.direct(lambda conn: _postgres_insert_samples(conn, columns))

    async def _insert_session(
        self, conn: AsyncConnection, record: PollRecord, platform: str, peak: float | None
    ) -> int:
        """The broadcast's row, inserted now or found: another source (or process) may have made it."""
        obs = record.session
        assert obs is not None
        session_id = await conn.scalar(
            self._insert(LiveSessionRow)
            .values(
                target_id=self.target_ids[record.target],
                platform=platform,
                session_key=obs.key,
                title=obs.title,
                started_at=obs.started_at,
                ended_at=obs.ended_at,
                first_seen_at=record.observed_at,
                last_seen_at=record.observed_at,
                last_status=obs.status.value,
                peak_viewers=peak,
                account=obs.account,
            )
            .on_conflict_do_nothing(index_elements=["platform", "session_key"])
            .returning(LiveSessionRow.id)
        )
        if session_id is None:
            session_id = await conn.scalar(
                select(LiveSessionRow.id).where(
                    LiveSessionRow.platform == platform, LiveSessionRow.session_key == obs.key
                )
            )
        return session_id  # type: ignore[no-any-return]

    def _sample_columns(self, samples: list[Sample], sessions: dict[tuple[str, str], int]) -> list[list[Any]]:
        """The samples as one list per column of SAMPLE_COLUMNS: no dict per row on the hot path."""
        ids = self.target_ids

        def session_id(sample: Sample) -> int | None:
            if not sample.session_key:
                return None
            key = (sample.platform, sample.session_key)
            return sessions.get(key) or self._session_ids.get(key)

        return [
            [ids[s.target] for s in samples],
            [s.metric.value for s in samples],
            [s.observed_at for s in samples],
            [s.value for s in samples],
            [s.provenance.value for s in samples],
            [session_id(s) for s in samples],
            [s.currency for s in samples],
        ]

    def _snapshot_row(self, record: PollRecord, raw: RawResponse, reason: str | None) -> dict[str, Any]:
        return {
            "target_id": self.target_ids[record.target],
            "fetched_at": raw.fetched_at,
            "observed_at": record.observed_at,
            "url": raw.url,
            "status_code": raw.status,
            "content_type": raw.content_type[:128],
            "outcome": record.outcome.value,
            "reason": reason,
            "body_size": len(raw.body),
            "body_zlib": zlib.compress(raw.body, 6),
        }

    async def _record_outcomes(self, statements: DriverStatements, records: Sequence[PollRecord]) -> None:
        latest: dict[str, PollRecord] = {}
        for record in records:
            latest[record.target] = record
        rows = [
            {
                "b_id": self.target_ids[name],
                "b_outcome": r.outcome.value,
                "b_at": r.observed_at,
                "b_detail": r.detail,
                "b_due": r.next_due_at,
                "b_success": r.observed_at if r.outcome in (Outcome.OK, Outcome.NOT_LIVE) else None,
                "b_expires": r.credentials_expire_at,
            }
            for name, r in latest.items()
        ]
        if rows:
            await statements.execute(self._outcome_update.sql, self._outcome_update.driver_params(rows))

    async def target_status(self) -> list[TargetRow]:
        async with self.engine.connect() as conn:
            result = await conn.execute(select(TargetRow).order_by(TargetRow.name))
            return list(result.all())  # type: ignore[arg-type]

    async def purge_snapshots(self, older_than: datetime) -> int:
        async with self.engine.begin() as conn:
            result = await conn.execute(
                RawSnapshotRow.__table__.delete().where(RawSnapshotRow.fetched_at < older_than)
            )
            return max(result.rowcount, 0)

    async def export_rows(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        targets: Sequence[str] = (),
        metrics: Sequence[str] = (),
    ) -> AsyncIterator[ExportRow]:
        query = (
            select(
                SampleRow.observed_at,
                TargetRow.platform,
                TargetRow.name,
                SampleRow.metric,
                SampleRow.value,
                SampleRow.provenance,
                LiveSessionRow.session_key,
            )
            .join(TargetRow, SampleRow.target_id == TargetRow.id)
            .outerjoin(LiveSessionRow, SampleRow.session_id == LiveSessionRow.id)
            .order_by(SampleRow.observed_at, TargetRow.name, SampleRow.metric)
        )
        if since is not None:
            query = query.where(SampleRow.observed_at >= since)
        if until is not None:
            query = query.where(SampleRow.observed_at < until)
        if targets:
            query = query.where(TargetRow.name.in_(targets))
        if metrics:
            query = query.where(SampleRow.metric.in_(metrics))
        async with self.engine.connect() as conn:
            result = await conn.stream(query)
            async for row in result:
                yield ExportRow(*row)
