"""Partitioned time-driven detection (DESIGN.md §9): partition leases, the detectors alive,
and whether a stored reading was the broker's retained copy (the detector reads readings back
from the table, and a retained copy is no sign of life).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("readings") as batch:
        batch.add_column(
            sa.Column("retained", sa.Boolean, nullable=False, server_default=sa.false())
        )
    op.create_table(
        "detector_partitions",
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("owner", sa.String(128)),
        sa.Column("expires_at", UTC_DATETIME),
        sa.Column("read_to", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "detector_members",
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("detector_members")
    op.drop_table("detector_partitions")
    with op.batch_alter_table("readings") as batch:
        batch.drop_column("retained")
