"""raw_snapshots unique on target, fetch time and URL, so spool replays are idempotent

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("raw_snapshots") as batch_op:
        batch_op.create_unique_constraint(
            "uq_raw_snapshots_target_time_url", ["target_id", "fetched_at", "url"]
        )


def downgrade() -> None:
    with op.batch_alter_table("raw_snapshots") as batch_op:
        batch_op.drop_constraint("uq_raw_snapshots_target_time_url", type_="unique")
