"""The care registry: the form's ledger on households, visit numbers, accounts and audit,
the visitors' registry, care services, referrals, emergency warnings and reminders.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)

NEW_TABLES = (
    "referrals",
    "warning_checks",
    "care_services",
    "warnings",
    "care_visitors",
    "care_reminders",
    "audit_log",
    "accounts",
)


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("township", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=32), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=True),
        sa.CheckConstraint(
            "role IN ('admin', 'operator', 'visitor')", name=op.f("ck_accounts_role")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_accounts_token_hash")),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("actor_role", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=True),
        sa.Column("target", sa.String(length=200), server_default="", nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(op.f("ix_audit_log_at"), "audit_log", ["at"], unique=False)
    op.create_index(op.f("ix_audit_log_household_id"), "audit_log", ["household_id"], unique=False)
    op.create_table(
        "care_reminders",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("period", sa.String(length=32), nullable=False),
        sa.Column("households", sa.JSON(), nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_reminders")),
        sa.UniqueConstraint("phone", "kind", "period", name="uq_care_reminders_once"),
    )
    op.create_table(
        "care_visitors",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("org_type", sa.String(length=32), nullable=False),
        sa.Column("organisation", sa.String(length=200), server_default="", nullable=False),
        sa.Column("villages", sa.JSON(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_visitors")),
        sa.UniqueConstraint("phone", name=op.f("uq_care_visitors_phone")),
    )
    op.create_table(
        "warnings",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.String(length=2000), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("level", sa.String(length=16), nullable=False),
        sa.Column("county", sa.String(length=100), server_default="", nullable=False),
        sa.Column("township", sa.String(length=100), nullable=False),
        sa.Column("villages", sa.JSON(), nullable=False),
        sa.Column("issued_at", UTC_DATETIME, nullable=False),
        sa.Column("issued_by", sa.String(length=100), nullable=False),
        sa.Column("closed_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_warnings")),
    )
    op.create_table(
        "care_services",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("served_on", sa.Date(), nullable=False),
        sa.Column("service", sa.String(length=500), nullable=False),
        sa.Column("provider", sa.String(length=100), nullable=False),
        sa.Column("satisfaction", sa.String(length=32), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_care_services_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_care_services")),
        sa.UniqueConstraint("household_id", "seq", name="uq_care_services_household_seq"),
    )
    op.create_table(
        "warning_checks",
        sa.Column("warning_id", sa.Integer(), nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.String(length=500), server_default="", nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=True),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_warning_checks_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["warning_id"],
            ["warnings.id"],
            name=op.f("fk_warning_checks_warning_id_warnings"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("warning_id", "household_id", name=op.f("pk_warning_checks")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("household_id", sa.String(length=64), nullable=False),
        sa.Column("visit_id", sa.Integer(), nullable=True),
        sa.Column("need", sa.String(length=500), nullable=False),
        sa.Column("referred_to", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("history", sa.JSON(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["household_id"],
            ["households.id"],
            name=op.f("fk_referrals_household_id_households"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["visit_id"],
            ["visits.id"],
            name=op.f("fk_referrals_visit_id_visits"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
    )
    op.create_index(op.f("ix_referrals_household_id"), "referrals", ["household_id"], unique=False)
    with op.batch_alter_table("households") as batch:
        batch.add_column(sa.Column("citizen_id", sa.String(length=18), nullable=True))
        batch.add_column(sa.Column("profile", sa.JSON(), nullable=True))
        batch.add_column(
            sa.Column("risk", sa.String(length=16), server_default="normal", nullable=False)
        )
        batch.add_column(sa.Column("situation_changed_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("registered_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("left_on", sa.Date(), nullable=True))
        batch.add_column(sa.Column("left_reason", sa.String(length=200), nullable=True))
        batch.create_check_constraint("ck_households_risk", "risk IN ('normal', 'high')")
        batch.create_index("ix_households_area", ["county", "township", "village"])
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("alert_id", existing_type=sa.Integer(), nullable=True)
    with op.batch_alter_table("visits") as batch:
        batch.add_column(sa.Column("seq", sa.Integer(), nullable=True))
        batch.create_index("ix_visits_visited_at", ["visited_at"])
    # Visits filed before numbers existed are numbered in the order they were entered.
    op.execute(
        "UPDATE visits SET seq = (SELECT count(*) FROM visits AS earlier"
        " WHERE earlier.household_id = visits.household_id AND earlier.id <= visits.id)"
    )
    with op.batch_alter_table("visits") as batch:
        batch.create_unique_constraint("uq_visits_household_seq", ["household_id", "seq"])


def downgrade() -> None:
    op.execute("DELETE FROM notifications WHERE alert_id IS NULL")
    with op.batch_alter_table("notifications") as batch:
        batch.alter_column("alert_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("visits") as batch:
        batch.drop_constraint("uq_visits_household_seq", type_="unique")
        batch.drop_index("ix_visits_visited_at")
        batch.drop_column("seq")
    with op.batch_alter_table("households") as batch:
        batch.drop_index("ix_households_area")
        batch.drop_constraint("ck_households_risk", type_="check")
        for column in (
            "left_reason",
            "left_on",
            "registered_on",
            "situation_changed_at",
            "risk",
            "profile",
            "citizen_id",
        ):
            batch.drop_column(column)
    op.drop_index("ix_referrals_household_id", table_name="referrals")
    op.drop_index("ix_audit_log_household_id", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    for table in NEW_TABLES:
        op.drop_table(table)
