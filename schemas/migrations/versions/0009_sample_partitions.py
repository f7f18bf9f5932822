"""samples: keyed by (target, metric, time), range-partitioned by day on PostgreSQL

The surrogate `id` goes: the unique key (target_id, metric, observed_at) becomes the primary key, which
also holds the partition key as PostgreSQL requires. On PostgreSQL the table becomes
`PARTITION BY RANGE (observed_at)` with a default partition (a write never fails for a missing day)
and one partition per UTC day that the existing rows cover; the running service creates the days
ahead and drops the days past `collector.sample_retention`. SQLite keeps a plain table. Every row is
copied over; the copy runs in the migration's transaction, so a failure leaves the old table as it was.

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

COLUMNS = "target_id, metric, observed_at, value, provenance, session_id, currency"


def _value_columns() -> list[sa.Column]:
    return [
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("provenance", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.ForeignKeyConstraint(["session_id"], ["live_sessions.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
    ]


def _days(first: datetime, last: datetime) -> list[date]:
    start, end = first.astimezone(UTC).date(), last.astimezone(UTC).date()
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _create_day_partition(day: date) -> None:
    # Frozen here rather than imported from collector.partitions: a migration must not change when
    # the service's code does. The names and bounds are the ones that module manages.
    low = datetime(day.year, day.month, day.day, tzinfo=UTC)
    op.execute(
        f"CREATE TABLE samples_p{day:%Y%m%d} PARTITION OF samples "
        f"FOR VALUES FROM ('{low.isoformat()}') TO ('{(low + timedelta(days=1)).isoformat()}')"
    )


def _free_names(table: str) -> None:
    """Drop the renamed table's key and foreign keys (PostgreSQL's default names), so the new table's
    take the same names; the rows are copied and the old table dropped in this transaction."""
    op.drop_constraint("samples_pkey", table, type_="primary")
    for column in ("target_id", "session_id"):
        op.drop_constraint(f"samples_{column}_fkey", table, type_="foreignkey")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    if postgres:  # read through the index that is dropped next
        bounds = (
            op.get_bind().execute(sa.text("SELECT min(observed_at), max(observed_at) FROM samples")).one()
        )
    op.rename_table("samples", "samples_unkeyed")
    # Index names are per schema (and PostgreSQL numbers clashing constraint names): free them.
    op.drop_index("ix_samples_observed_at", table_name="samples_unkeyed")
    if postgres:
        _free_names("samples_unkeyed")
    op.create_table(
        "samples",
        sa.Column("target_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        *_value_columns(),
        sa.PrimaryKeyConstraint("target_id", "metric", "observed_at"),
        postgresql_partition_by="RANGE (observed_at)",
    )
    if postgres:
        op.execute("CREATE TABLE samples_default PARTITION OF samples DEFAULT")
        if bounds[0] is not None:  # the days the rows cover; the service adds the days ahead
            for day in _days(bounds[0], bounds[1]):
                _create_day_partition(day)
    op.execute(f"INSERT INTO samples ({COLUMNS}) SELECT {COLUMNS} FROM samples_unkeyed")
    op.drop_table("samples_unkeyed")
    op.create_index("ix_samples_observed_at", "samples", ["observed_at"])


def downgrade() -> None:
    op.rename_table("samples", "samples_keyed")
    op.drop_index("ix_samples_observed_at", table_name="samples_keyed")
    if op.get_bind().dialect.name == "postgresql":
        _free_names("samples_keyed")
    op.create_table(
        "samples",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        *_value_columns(),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("target_id", "metric", "observed_at", name="uq_samples_target_metric_time"),
    )
    op.execute(
        f"INSERT INTO samples ({COLUMNS}) SELECT {COLUMNS} FROM samples_keyed ORDER BY observed_at, target_id"
    )
    op.drop_table("samples_keyed")  # on PostgreSQL its partitions go with it
    op.create_index("ix_samples_observed_at", "samples", ["observed_at"])
