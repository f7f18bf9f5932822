"""session links: one broadcast known by several ids (a public room id, a shop's live id)

`live_sessions.account` names the broadcasting account where a source says it; `live_session_keys`
holds every id each kind of source knows the broadcast by, so the shop API's live id and the public
room id of one broadcast lead to the same row. `targets.credentials_expire_at` is the target's API
token expiry, for `collector status`.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("live_sessions") as batch_op:
        batch_op.add_column(sa.Column("account", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_live_sessions_platform_account", ["platform", "account"])
    with op.batch_alter_table("targets") as batch_op:
        batch_op.add_column(sa.Column("credentials_expire_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "live_session_keys",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "session_id", sa.Integer(), sa.ForeignKey("live_sessions.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("session_key", sa.String(length=64), nullable=False),
        sa.UniqueConstraint("platform", "source", "session_key", name="uq_live_session_keys_key"),
        sa.UniqueConstraint("session_id", "source", name="uq_live_session_keys_one_per_source"),
    )


def downgrade() -> None:
    op.drop_table("live_session_keys")
    with op.batch_alter_table("targets") as batch_op:
        batch_op.drop_column("credentials_expire_at")
    with op.batch_alter_table("live_sessions") as batch_op:
        batch_op.drop_index("ix_live_sessions_platform_account")
        batch_op.drop_column("account")
