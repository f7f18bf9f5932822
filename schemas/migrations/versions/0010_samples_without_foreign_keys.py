"""samples: no foreign keys; deleting a target or a broadcast still reaches its samples, by trigger

Every inserted sample paid two per-row foreign-key checks (`target_id`, `session_id`): on PostgreSQL
they took as long as the insert itself. The writer is the only producer of samples and writes a
target's or a broadcast's row before (or in the same transaction as) its samples, so the checks
guarded nothing the writer does not already ensure. What the keys also did, their `ON DELETE` actions,
moves to triggers on the parent tables, which cost nothing on insert: deleting a target deletes its
samples (was `CASCADE`), deleting a broadcast clears its samples' `session_id` (was `SET NULL`).

PostgreSQL drops the two constraints (catalog only; the partitions' copies go with them) and runs one
statement per delete statement; SQLite copies the table into one declared without them (its keys
cannot be dropped in place) and runs its triggers per deleted row, also when the connection has
foreign keys off. A later migration that renames `samples` away on SQLite (as `_sqlite_rebuild` does)
must drop the triggers first: SQLite rewrites trigger bodies to follow a renamed table.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = "target_id, metric, observed_at, value, provenance, session_id, currency"

POSTGRES_TRIGGERS = (
    """CREATE FUNCTION samples_delete_of_targets() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM samples WHERE target_id IN (SELECT id FROM gone);
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER targets_delete_samples AFTER DELETE ON targets REFERENCING OLD TABLE AS gone "
    "FOR EACH STATEMENT EXECUTE FUNCTION samples_delete_of_targets()",
    """CREATE FUNCTION samples_unlink_of_live_sessions() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE samples SET session_id = NULL WHERE session_id IN (SELECT id FROM gone);
        RETURN NULL;
    END $$""",
    "CREATE TRIGGER live_sessions_unlink_samples AFTER DELETE ON live_sessions REFERENCING OLD TABLE AS gone "
    "FOR EACH STATEMENT EXECUTE FUNCTION samples_unlink_of_live_sessions()",
)
SQLITE_TRIGGERS = (
    "CREATE TRIGGER targets_delete_samples AFTER DELETE ON targets "
    "BEGIN DELETE FROM samples WHERE target_id = OLD.id; END",
    "CREATE TRIGGER live_sessions_unlink_samples AFTER DELETE ON live_sessions "
    "BEGIN UPDATE samples SET session_id = NULL WHERE session_id = OLD.id; END",
)
SQLITE_DROP_TRIGGERS = ("DROP TRIGGER targets_delete_samples", "DROP TRIGGER live_sessions_unlink_samples")
DROP_TRIGGERS = (
    "DROP TRIGGER targets_delete_samples ON targets",
    "DROP FUNCTION samples_delete_of_targets()",
    "DROP TRIGGER live_sessions_unlink_samples ON live_sessions",
    "DROP FUNCTION samples_unlink_of_live_sessions()",
)


def _sqlite_rebuild(*foreign_keys: sa.ForeignKeyConstraint) -> None:
    """SQLite: `samples` copied into a table declared with `foreign_keys` (and nothing else changed)."""
    op.rename_table("samples", "samples_old")
    op.drop_index("ix_samples_observed_at", table_name="samples_old")
    op.create_table(
        "samples",
        sa.Column("target_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("provenance", sa.String(length=16), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.PrimaryKeyConstraint("target_id", "metric", "observed_at"),
        *foreign_keys,
    )
    op.execute(f"INSERT INTO samples ({COLUMNS}) SELECT {COLUMNS} FROM samples_old")
    op.drop_table("samples_old")
    op.create_index("ix_samples_observed_at", "samples", ["observed_at"])


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for column in ("target_id", "session_id"):
            op.drop_constraint(f"samples_{column}_fkey", "samples", type_="foreignkey")
        triggers = POSTGRES_TRIGGERS
    else:
        _sqlite_rebuild()
        triggers = SQLITE_TRIGGERS
    for statement in triggers:
        op.execute(statement)


def downgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for statement in DROP_TRIGGERS if postgres else SQLITE_DROP_TRIGGERS:
        op.execute(statement)
    # Rows the keys would refuse: samples of a target deleted past the trigger, of a broadcast gone.
    op.execute("DELETE FROM samples WHERE target_id NOT IN (SELECT id FROM targets)")
    op.execute(
        "UPDATE samples SET session_id = NULL "
        "WHERE session_id IS NOT NULL AND session_id NOT IN (SELECT id FROM live_sessions)"
    )
    if not postgres:
        _sqlite_rebuild(
            sa.ForeignKeyConstraint(["session_id"], ["live_sessions.id"], ondelete="SET NULL"),
            sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
        )
        return
    op.create_foreign_key(
        "samples_session_id_fkey", "samples", "live_sessions", ["session_id"], ["id"], ondelete="SET NULL"
    )
    op.create_foreign_key(
        "samples_target_id_fkey", "samples", "targets", ["target_id"], ["id"], ondelete="CASCADE"
    )
