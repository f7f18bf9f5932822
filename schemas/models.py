"""SQLAlchemy 2.0 models: targets, live sessions and their keys, samples, raw snapshots, backfill jobs, gaps, instances, fleet leases and shared state.

Schema changes go through Alembic migrations in `schemas/migrations`; these models are their source.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit sequence.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite stores naive text, PostgreSQL timestamptz)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class TargetRow(Base):
    __tablename__ = "targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    platform: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    campaign: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_outcome: Mapped[str | None] = mapped_column(String(32))
    last_outcome_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_detail: Mapped[str | None] = mapped_column(Text)
    next_due_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    credentials_expire_at: Mapped[datetime | None] = mapped_column(UtcDateTime)  # API token expiry


class LiveSessionRow(Base):
    """One broadcast: a TikTok room id, a Shopee session id, a Facebook video id.

    Every source that reports on the same broadcast (the public page, the shop's dashboard) writes to
    this one row, so a broadcast is never counted twice; `target_id` is the target that saw it first.
    """

    __tablename__ = "live_sessions"
    __table_args__ = (
        UniqueConstraint("platform", "session_key", name="uq_live_sessions_platform_key"),
        Index("ix_live_sessions_platform_account", "platform", "account"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    session_key: Mapped[str] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_status: Mapped[str] = mapped_column(String(16))
    peak_viewers: Mapped[float | None] = mapped_column(Double)
    account: Mapped[str | None] = mapped_column(String(64))  # the broadcasting account, where known


class LiveSessionKeyRow(Base):
    """An id a kind of source (`source`: the target kind, e.g. a public `live` room or `shop_lives`)
    knows a broadcast by: one per source and broadcast, so a shop's live id and the public room id of
    the same broadcast lead to one `live_sessions` row."""

    __tablename__ = "live_session_keys"
    __table_args__ = (
        UniqueConstraint("platform", "source", "session_key", name="uq_live_session_keys_key"),
        UniqueConstraint("session_id", "source", name="uq_live_session_keys_one_per_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("live_sessions.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    session_key: Mapped[str] = mapped_column(String(64))


SAMPLE_PARTITION_PREFIX = "samples_p"  # + the UTC day, YYYYMMDD
SAMPLE_DEFAULT_PARTITION = "samples_default"


def modelled(name: str | None, type_: str, _parents: Any) -> bool:
    """Alembic's `include_name`: everything is compared with the models but the partitions of
    `samples` (PostgreSQL), which the running service makes and drops (`collector.partitions`)."""
    return not (
        type_ == "table"
        and name is not None
        and (name == SAMPLE_DEFAULT_PARTITION or name.startswith(SAMPLE_PARTITION_PREFIX))
    )


class SampleRow(Base):
    """One reading of one metric of one target at one time.

    The key makes a retried or replayed write a no-op instead of a duplicate. It is the primary key
    (no surrogate id: over a billion rows a second unique index costs tens of gigabytes and every
    insert pays for it), and it holds `observed_at`, as every unique key of a partitioned table must:
    on PostgreSQL the table is range-partitioned by day on `observed_at` (`collector.partitions`).
    """

    __tablename__ = "samples"
    __table_args__ = (
        Index("ix_samples_observed_at", "observed_at"),
        {"postgresql_partition_by": "RANGE (observed_at)"},
    )

    # No foreign keys (migration 0010): per-row checks cost as much as the insert, and the writer, the
    # only producer, writes a target's and a broadcast's row first. Triggers on `targets` and
    # `live_sessions` do what `ON DELETE` did: a target's samples go with it, a broadcast's lose its id.
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime, primary_key=True)
    value: Mapped[float] = mapped_column(Double)
    provenance: Mapped[str] = mapped_column(String(16))
    session_id: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str | None] = mapped_column(String(3))


class RawSnapshotRow(Base):
    """A response body as fetched (zlib-compressed), kept to diagnose and re-parse layout changes."""

    __tablename__ = "raw_snapshots"
    __table_args__ = (
        Index("ix_raw_snapshots_fetched_at", "fetched_at"),
        # A replayed spool record must not store the same body twice.
        UniqueConstraint("target_id", "fetched_at", "url", name="uq_raw_snapshots_target_time_url"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    fetched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The poll's time, which its samples carry: `backfill reprocess` replaces exactly those samples.
    observed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    url: Mapped[str] = mapped_column(Text)
    status_code: Mapped[int] = mapped_column(Integer)
    content_type: Mapped[str] = mapped_column(String(128))
    outcome: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(64))
    body_size: Mapped[int] = mapped_column(Integer)
    body_zlib: Mapped[bytes] = mapped_column(LargeBinary)


class BackfillJobRow(Base):
    """One backfill (`reprocess`, `history`, `gaps`): what it was asked, where it got to, what it did.

    `cursor` is the index of the next unit of work, so an interrupted job resumes where it stopped;
    `owner` is the process running it (`host:pid`) and `heartbeat_at` when it last said so.
    """

    __tablename__ = "backfill_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    args: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed, interrupted
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int | None] = mapped_column(Integer)
    counts: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    errors: Mapped[list[str]] = mapped_column(JSON, default=list)
    owner: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class GapRow(Base):
    """A window in which a target was due and got no sample; shown in exports and reports, never filled
    in by interpolation. `status` says what a backfill could recover: `open` (nothing yet), `partial`
    (final counters of the sessions in it were fetched afterwards), `unfillable` (nothing to fetch)."""

    __tablename__ = "gaps"
    __table_args__ = (UniqueConstraint("target_id", "started_at", name="uq_gaps_target_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"))
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("backfill_jobs.id", ondelete="SET NULL"))


class InstanceRow(Base):
    """A running `collector run` process and its heartbeat: a backfill started from the CLI hands its
    network work to a live instance (which runs it under the service's politeness limits)."""

    __tablename__ = "collector_instances"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    started_at: Mapped[datetime] = mapped_column(UtcDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime)
    config_source: Mapped[str | None] = mapped_column(Text)
    last_reload_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_reload: Mapped[str | None] = mapped_column(Text)  # what the last reload did, or why it was refused


class TargetLeaseRow(Base):
    """Which fleet replica polls a target now (`holder`, an instance id) and until when its claim holds
    without renewal. A row with no holder, or whose lease has run out, is free to claim."""

    __tablename__ = "target_leases"
    __table_args__ = (Index("ix_target_leases_holder", "holder"),)

    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    held_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Set by a replica handing the target over: when its next poll was due, so the cadence carries on.
    next_poll_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    takeovers: Mapped[int] = mapped_column(Integer, default=0)  # claims of a lease that ran out


class TargetStateRow(Base):
    """A target's state between polls (the kind's typed state, the backoff), so a target that changes
    replica, or a restarted collector, carries on where it was: same room, same estimate baseline."""

    __tablename__ = "target_state"

    target_id: Mapped[int] = mapped_column(ForeignKey("targets.id", ondelete="CASCADE"), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)


class FleetHostRow(Base):
    """One platform host's politeness budget, shared by every replica: the next request start any
    replica may take, and a `Retry-After` hold."""

    __tablename__ = "fleet_hosts"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_start: Mapped[datetime] = mapped_column(UtcDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)


class FleetPlatformRow(Base):
    """A platform's circuit breaker and proxy choice, shared by every replica."""

    __tablename__ = "fleet_platforms"

    platform: Mapped[str] = mapped_column(String(32), primary_key=True)
    circuit_open_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    proxy_index: Mapped[int] = mapped_column(Integer, default=0)
