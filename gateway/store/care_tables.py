"""Tables of the care registry (DESIGN.md §7): accounts and audit, the visitors' registry,
care services, referrals, emergency warnings and the reminders sent.

They share `tables.metadata`; households, contacts and visits stay in `tables.py`.
"""

from __future__ import annotations

import sqlalchemy as sa

from gateway.store.tables import HOUSEHOLD_ID, UTCDateTime, metadata

# People who use the API. A token is shown once; only its SHA-256 is kept (tokens are 256 random
# bits, so a slow hash adds nothing but latency to every request).
accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    # An operator's area; a visitor's phone (their households are those they are assigned to).
    sa.Column("township", sa.String(100)),
    sa.Column("phone", sa.String(32)),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sa.CheckConstraint("role IN ('admin', 'operator', 'visitor')", name="role"),
)

# Every change, and every view of a whole citizen ID number: who, when, what.
audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UTCDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("actor_role", sa.String(16), nullable=False),
    sa.Column("account_id", sa.Integer),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("household_id", HOUSEHOLD_ID, index=True),
    sa.Column("target", sa.String(200), nullable=False, server_default=""),
    sa.Column("details", sa.JSON, nullable=False),
)

# The visitors' registry: who they are and which villages they cover. Assignments to elders are
# the `contacts` rows of role visitor (matched by phone), which escalation already reads.
care_visitors = sa.Table(
    "care_visitors",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("phone", sa.String(32), nullable=False, unique=True),
    # party_government, village_committee, enterprise, social_organisation, social_worker,
    # volunteer, other (the form's supporting-unit types).
    sa.Column("org_type", sa.String(32), nullable=False),
    sa.Column("organisation", sa.String(200), nullable=False, server_default=""),
    # [{"county", "township", "village"}, ...]
    sa.Column("villages", sa.JSON, nullable=False),
    sa.Column("language", sa.String(8)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Care-service records (the form's second table): the n-th service, given by whom, satisfaction.
care_services = sa.Table(
    "care_services",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("seq", sa.Integer, nullable=False),
    sa.Column("served_on", sa.Date, nullable=False),
    sa.Column("service", sa.String(500), nullable=False),
    sa.Column("provider", sa.String(100), nullable=False),
    sa.Column("satisfaction", sa.String(32), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.UniqueConstraint("household_id", "seq", name="uq_care_services_household_seq"),
)

# Needs found on a visit, referred to someone and followed up until done.
referrals = sa.Table(
    "referrals",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("visit_id", sa.Integer, sa.ForeignKey("visits.id", ondelete="SET NULL")),
    sa.Column("need", sa.String(500), nullable=False),
    sa.Column("referred_to", sa.String(200), nullable=False),
    # open, in_progress, done, declined
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("due_on", sa.Date),
    # Follow-ups: [{"at", "by", "status", "note"}, ...]
    sa.Column("history", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Emergency warnings (typhoon, flood, heat...) sent to an area's visitors, and the account of
# every elder there: pending until a visitor marks them checked, safe or moved to shelter.
warnings = sa.Table(
    "warnings",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.String(2000), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("level", sa.String(16), nullable=False),
    sa.Column("county", sa.String(100), nullable=False, server_default=""),
    sa.Column("township", sa.String(100), nullable=False),
    # Villages of the township it covers; empty: the whole township.
    sa.Column("villages", sa.JSON, nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("issued_by", sa.String(100), nullable=False),
    sa.Column("closed_at", UTCDateTime),
)

warning_checks = sa.Table(
    "warning_checks",
    metadata,
    sa.Column(
        "warning_id",
        sa.Integer,
        sa.ForeignKey("warnings.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # The elder's number in the visitor's message (for SMS replies like "1 安全").
    sa.Column("number", sa.Integer, nullable=False),
    # pending, checked, safe, shelter
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("note", sa.String(500), nullable=False, server_default=""),
    sa.Column("updated_at", UTCDateTime),
    sa.Column("updated_by", sa.String(100)),
)

# Visit reminders sent, one per (phone, kind, period): several gateway processes and restarts
# never send the same reminder twice.
care_reminders = sa.Table(
    "care_reminders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("phone", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("period", sa.String(32), nullable=False),
    sa.Column("households", sa.JSON, nullable=False),
    sa.Column("sent_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("phone", "kind", "period", name="uq_care_reminders_once"),
)
