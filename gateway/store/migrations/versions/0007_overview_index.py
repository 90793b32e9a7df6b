"""The overview's index: households by township and village (with left_on, so counting a
scope's villages reads the index alone), which an operator's scope filters on everywhere.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_households_township_village", "households", ["township", "village", "left_on"]
    )


def downgrade() -> None:
    op.drop_index("ix_households_township_village", table_name="households")
