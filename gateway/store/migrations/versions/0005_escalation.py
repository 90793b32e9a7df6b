"""Escalation state, visits, arrival and flags on alerts, per-recipient language.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("households") as batch:
        batch.add_column(sa.Column("escalation", sa.JSON(), nullable=True))
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), nullable=True))
        batch.create_index("ix_contacts_phone", ["phone"])
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("arrived_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("arrived_by", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("flagged_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("flag_reason", sa.String(length=200), nullable=True))
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("run", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("purpose", sa.String(length=16), nullable=False, server_default="alert")
        )
        batch.add_column(
            sa.Column("language", sa.String(length=8), nullable=False, server_default="zh")
        )
        batch.add_column(sa.Column("delivery_status", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("batched_into", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("fields", sa.JSON(), nullable=True))
        batch.create_index("ix_notifications_provider_id", ["provider_id"])
    op.create_table(
        "escalations",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rounds", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("runs", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_at", UTC_DATETIME, nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["alert_id"],
            ["alerts.id"],
            name="fk_escalations_alert_id_alerts",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("alert_id", name="pk_escalations"),
    )
    op.create_index("ix_escalations_due", "escalations", ["state", "next_at"])
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("method", sa.String(length=32), nullable=False),
        sa.Column("visited_at", UTC_DATETIME, nullable=False),
        sa.Column("visitor", sa.String(length=100), nullable=False),
        sa.Column("summary", sa.String(length=1000), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.CheckConstraint(
            "method IN ('phone', 'home_visit', 'video', 'remote_monitoring', 'other')",
            name="ck_visits_method",
        ),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name="fk_visits_household_id_households",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name="fk_visits_alert_id_alerts", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_visits"),
        sa.UniqueConstraint("alert_id", name="uq_visits_alert_id"),
    )
    op.create_index("ix_visits_household_at", "visits", ["household_id", "visited_at"])


def downgrade() -> None:
    op.drop_index("ix_visits_household_at", table_name="visits")
    op.drop_table("visits")
    op.drop_index("ix_escalations_due", table_name="escalations")
    op.drop_table("escalations")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_index("ix_notifications_provider_id")
        for column in (
            "fields",
            "batched_into",
            "delivery_status",
            "language",
            "purpose",
            "run",
            "step",
        ):
            batch.drop_column(column)
    with op.batch_alter_table("alerts") as batch:
        for column in ("flag_reason", "flagged_at", "arrived_by", "arrived_at"):
            batch.drop_column(column)
    with op.batch_alter_table("contacts") as batch:
        batch.drop_index("ix_contacts_phone")
        batch.drop_column("language")
    with op.batch_alter_table("households") as batch:
        batch.drop_column("escalation")
