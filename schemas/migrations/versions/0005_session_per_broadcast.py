"""live_sessions: one row per broadcast (platform + session key), whichever targets report on it

The shop dashboard and the public live page of one Shopee session used to make two rows (keyed by
target); existing duplicates are merged into the oldest row and their samples repointed.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_SAME_BROADCAST = "o.platform = live_sessions.platform AND o.session_key = live_sessions.session_key"


def upgrade() -> None:
    with op.batch_alter_table("live_sessions") as batch_op:
        batch_op.add_column(sa.Column("platform", sa.String(length=32), nullable=True))
    op.execute(
        "UPDATE live_sessions SET platform = "
        "(SELECT targets.platform FROM targets WHERE targets.id = live_sessions.target_id)"
    )
    op.execute(
        "UPDATE samples SET session_id = (SELECT MIN(o.id) FROM live_sessions o, live_sessions s "
        "WHERE s.id = samples.session_id AND o.platform = s.platform AND o.session_key = s.session_key) "
        "WHERE session_id IS NOT NULL"
    )
    op.execute(
        "UPDATE live_sessions SET "
        f"first_seen_at = (SELECT MIN(o.first_seen_at) FROM live_sessions o WHERE {_SAME_BROADCAST}), "
        f"last_seen_at = (SELECT MAX(o.last_seen_at) FROM live_sessions o WHERE {_SAME_BROADCAST}), "
        f"peak_viewers = (SELECT MAX(o.peak_viewers) FROM live_sessions o WHERE {_SAME_BROADCAST})"
    )
    op.execute(
        "DELETE FROM live_sessions WHERE id NOT IN "
        "(SELECT MIN(id) FROM live_sessions GROUP BY platform, session_key)"
    )
    with op.batch_alter_table("live_sessions") as batch_op:
        batch_op.alter_column("platform", existing_type=sa.String(length=32), nullable=False)
        batch_op.drop_constraint("uq_live_sessions_target_key", type_="unique")
        batch_op.create_unique_constraint("uq_live_sessions_platform_key", ["platform", "session_key"])


def downgrade() -> None:
    with op.batch_alter_table("live_sessions") as batch_op:
        batch_op.drop_constraint("uq_live_sessions_platform_key", type_="unique")
        batch_op.create_unique_constraint("uq_live_sessions_target_key", ["target_id", "session_key"])
        batch_op.drop_column("platform")
