"""fleet: target leases, persisted target state, the shared politeness budget

`target_leases` says which replica polls a target and until when its claim holds; `target_state`
keeps a target's state between polls so a target that changes replica (or a restart) carries on;
`fleet_hosts` and `fleet_platforms` hold each host's request spacing and Retry-After, and each
platform's circuit and proxy, for every replica at once.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "target_leases",
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=128), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("held_since", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("takeovers", sa.Integer(), nullable=False, server_default="0"),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("target_id"),
    )
    op.create_index("ix_target_leases_holder", "target_leases", ["holder"])
    op.create_table(
        "target_state",
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["target_id"], ["targets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("target_id"),
    )
    op.create_table(
        "fleet_hosts",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("next_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("platform", "host"),
    )
    op.create_table(
        "fleet_platforms",
        sa.Column("platform", sa.String(length=32), nullable=False),
        sa.Column("circuit_open_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("proxy_index", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("platform"),
    )


def downgrade() -> None:
    op.drop_table("fleet_platforms")
    op.drop_table("fleet_hosts")
    op.drop_table("target_state")
    op.drop_index("ix_target_leases_holder", table_name="target_leases")
    op.drop_table("target_leases")
