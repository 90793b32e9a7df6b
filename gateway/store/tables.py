"""SQL tables (SQLAlchemy Core), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def sqlite_text(value: datetime) -> str:
    """How a time is kept on SQLite: UTC, as SQLAlchemy's SQLite DATETIME writes it
    ("2026-11-29 05:00:00.000000"), so that text order is time order."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(" ", "microseconds")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; SQLite keeps no zone, so it is restored on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value if value.tzinfo is UTC else value.astimezone(UTC)

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """On SQLite, the text SQLAlchemy's SQLite DATETIME would write, by `isoformat`: every
        reading binds two times, and the dict-formatting processor behind ours cost a fifth
        more (tests/unit/store/test_utc_datetime.py keeps the two the same)."""
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        def process(value: datetime | None) -> str | None:
            return None if value is None else sqlite_text(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


HOUSEHOLD_ID = sa.String(64)
DEVICE_ID = sa.String(128)

households = sa.Table(
    "households",
    metadata,
    sa.Column("id", HOUSEHOLD_ID, primary_key=True),
    sa.Column("elder_name", sa.String(100), nullable=False),
    sa.Column("elder_phone", sa.String(32)),
    sa.Column("county", sa.String(100), nullable=False, server_default=""),
    sa.Column("township", sa.String(100), nullable=False, server_default=""),
    sa.Column("village", sa.String(100), nullable=False, server_default=""),
    sa.Column("address_detail", sa.String(200), nullable=False, server_default=""),
    sa.Column("timezone", sa.String(64)),
    # The household's own escalation steps per severity (only what differs from the settings).
    sa.Column("escalation", sa.JSON),
    sa.Column("details", sa.JSON, nullable=False),
    # The registry (DESIGN.md §7): the elder's citizen ID number (personal data, never in a
    # list whole) and the rest of the official form's ledger (categories, members, living
    # conditions, support received) as validated JSON.
    sa.Column("citizen_id", sa.String(18)),
    sa.Column("profile", sa.JSON),
    # Reminder tier: normal (monthly) or high (weekly); a major change in the elder's situation
    # asks for a visit within 24 hours of it.
    sa.Column("risk", sa.String(16), nullable=False, server_default="normal"),
    sa.Column("situation_changed_at", UTCDateTime),
    # In the programme from, until (death, moving away): coverage counts the elders in it.
    sa.Column("registered_on", sa.Date),
    sa.Column("left_on", sa.Date),
    sa.Column("left_reason", sa.String(200)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.CheckConstraint("risk IN ('normal', 'high')", name="risk"),
    sa.Index("ix_households_area", "county", "township", "village"),
    # An operator's scope (township) and the overview's villages, read from the index alone.
    sa.Index("ix_households_township_village", "township", "village", "left_on"),
)

contacts = sa.Table(
    "contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("phone", sa.String(32), nullable=False),
    sa.Column("relation", sa.String(50)),
    # Language of the messages this person gets (zh, en); None: the gateway's.
    sa.Column("language", sa.String(8)),
    sa.CheckConstraint("role IN ('visitor', 'relative')", name="role"),
    sa.Index("ix_contacts_phone", "phone"),
)

devices = sa.Table(
    "devices",
    metadata,
    sa.Column("household_id", HOUSEHOLD_ID, primary_key=True),
    sa.Column("device_id", DEVICE_ID, primary_key=True),
    sa.Column("kind", sa.String(32)),
    sa.Column("source", sa.String(64)),
    sa.Column("review", sa.String(16), nullable=False, server_default="new"),
    sa.Column("label", sa.String(100)),
    sa.Column("registered_at", UTCDateTime),
    sa.Column("first_seen", UTCDateTime),
    sa.Column("last_seen", UTCDateTime),
    sa.ForeignKeyConstraint(["household_id"], ["households.id"], ondelete="CASCADE"),
)

device_state = sa.Table(
    "device_state",
    metadata,
    sa.Column("household_id", HOUSEHOLD_ID, primary_key=True),
    sa.Column("device_id", DEVICE_ID, primary_key=True),
    sa.Column("metric", sa.String(32), primary_key=True),
    sa.Column("value_num", sa.Float),
    sa.Column("value_text", sa.String(64)),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
)

readings = sa.Table(
    "readings",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("household_id", HOUSEHOLD_ID, nullable=False),
    sa.Column("device_id", DEVICE_ID, nullable=False),
    sa.Column("metric", sa.String(32), nullable=False),
    sa.Column("value_num", sa.Float),
    sa.Column("value_text", sa.String(64)),
    sa.Column("unit", sa.String(16)),
    sa.Column("ts", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    # The broker's retained copy of a state: no sign that the device is alive when it came.
    sa.Column("retained", sa.Boolean, nullable=False, server_default=sa.false()),
    # A redelivered message (QoS 1 is at-least-once) carries the same key and is ignored.
    sa.UniqueConstraint("household_id", "device_id", "metric", "ts", name="uq_readings_key"),
    sa.Index("ix_readings_household_ts", "household_id", "ts"),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("household_id", HOUSEHOLD_ID, nullable=False),
    sa.Column("device_id", DEVICE_ID, nullable=False),
    sa.Column("rule_id", sa.String(64), nullable=False),
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("summary", sa.String(500), nullable=False),
    sa.Column("evidence", sa.JSON, nullable=False),
    sa.Column("opened_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Column("occurrences", sa.Integer, nullable=False, server_default="1"),
    sa.Column("condition_cleared_at", UTCDateTime),
    sa.Column("acknowledged_at", UTCDateTime),
    sa.Column("acknowledged_by", sa.String(100)),
    sa.Column("resolved_at", UTCDateTime),
    sa.Column("resolved_by", sa.String(100)),
    sa.Column("resolution_note", sa.String(1000)),
    # Someone confirmed they are at the elder's home (SMS "2", the API).
    sa.Column("arrived_at", UTCDateTime),
    sa.Column("arrived_by", sa.String(100)),
    # Needs the control room's attention: it reached the control room, or nobody could be told.
    sa.Column("flagged_at", UTCDateTime),
    sa.Column("flag_reason", sa.String(200)),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # One active alert per (household, rule, device): repeats update it.
    sa.Index(
        "uq_alerts_active",
        "household_id",
        "rule_id",
        "device_id",
        unique=True,
        sqlite_where=sa.text("status != 'resolved'"),
        postgresql_where=sa.text("status != 'resolved'"),
    ),
    sa.Index("ix_alerts_status", "status"),
)

alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("actor", sa.String(100)),
    sa.Column("detail", sa.String(1000)),
    sa.Index("ix_alert_events_alert", "alert_id", "id"),
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # None: a message about no alert (a visit reminder, an emergency warning to visitors).
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE")),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient_role", sa.String(16), nullable=False),
    sa.Column("recipient_name", sa.String(100), nullable=False),
    sa.Column("recipient_phone", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("body", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("provider", sa.String(32)),
    sa.Column("provider_id", sa.String(64)),
    sa.Column("error", sa.String(500)),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("claimed_at", UTCDateTime),
    sa.Column("sent_at", UTCDateTime),
    # Held back until then (quiet hours for low-severity alerts); None: send at once.
    sa.Column("not_before", UTCDateTime),
    # The escalation step that sent it (None: sent before escalations existed).
    sa.Column("step", sa.Integer),
    # Which run of the escalation's steps (escalations.runs when it was queued).
    sa.Column("run", sa.Integer),
    sa.Column("purpose", sa.String(16), nullable=False, server_default="alert"),
    sa.Column("language", sa.String(8), nullable=False, server_default="zh"),
    # What the provider reported later (status callbacks): delivered, undelivered, no-answer...
    sa.Column("delivery_status", sa.String(32)),
    # Sent as part of another notification's message (several alerts of a household at once).
    sa.Column("batched_into", sa.Integer),
    # The message's parts, for providers that send approved templates with variables.
    sa.Column("fields", sa.JSON),
    sa.Index("ix_notifications_status", "status"),
    sa.Index("ix_notifications_alert", "alert_id"),
    sa.Index("ix_notifications_provider_id", "provider_id"),
)

# Where each alert's escalation stands: the policy frozen on it when it opened, the next step
# to run and when. The escalator claims due rows (FOR UPDATE SKIP LOCKED on PostgreSQL), so a
# step runs once however many gateway processes share the database, and a restart resumes.
escalations = sa.Table(
    "escalations",
    metadata,
    sa.Column(
        "alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("policy", sa.JSON, nullable=False),
    # running: steps go on; acknowledged: waiting for arrival (closed loop); done: nothing more.
    sa.Column("state", sa.String(16), nullable=False),
    # The next step to run (an index into the policy's steps); rounds: repeats of the last.
    sa.Column("step", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rounds", sa.Integer, nullable=False, server_default="0"),
    # Steps run so far (each run's notifications carry its number).
    sa.Column("runs", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_at", UTCDateTime),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_escalations_due", "state", "next_at"),
)

# Visits: each contact with an elder on the official form's terms. The escalation files one per
# alert (method remote_monitoring, or phone when the elder answered a check-in call).
visits = sa.Table(
    "visits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="SET NULL"), unique=True),
    # The n-th visit to this household (the form's sequence number), in the order entered.
    sa.Column("seq", sa.Integer),
    sa.Column("method", sa.String(32), nullable=False),
    sa.Column("visited_at", UTCDateTime, nullable=False),
    sa.Column("visitor", sa.String(100), nullable=False),
    sa.Column("summary", sa.String(1000), nullable=False),
    # The rest of the record: who was notified, who acknowledged and when, who arrived...
    sa.Column("details", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.CheckConstraint(
        "method IN ('phone', 'home_visit', 'video', 'remote_monitoring', 'other')", name="method"
    ),
    sa.Index("ix_visits_household_at", "household_id", "visited_at"),
    sa.UniqueConstraint("household_id", "seq", name="uq_visits_household_seq"),
    sa.Index("ix_visits_visited_at", "visited_at"),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(512), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("reason_code", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(1000), nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    sa.Index("ix_dead_letters_received", "received_at"),
)

household_rules = sa.Table(
    "household_rules",
    metadata,
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    # Only what differs from rules.toml: {"no_water_use": {"window_h": 16}, ...}.
    sa.Column("overrides", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(100), nullable=False),
)

away_periods = sa.Table(
    "away_periods",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("starts_at", UTCDateTime, nullable=False),
    sa.Column("ends_at", UTCDateTime, nullable=False),
    sa.Column("note", sa.String(200), nullable=False, server_default=""),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("created_by", sa.String(100), nullable=False),
    sa.Index("ix_away_periods_household_ends", "household_id", "ends_at"),
)

# What time-driven rules remember of each household (its activity log, as JSON), so a restart
# does not start their clocks again from zero.
rule_state = sa.Table(
    "rule_state",
    metadata,
    sa.Column(
        "household_id",
        HOUSEHOLD_ID,
        sa.ForeignKey("households.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Per MQTT session (client id): the packet ids and digests of the last two batches' messages
# stamped with their arrival time, so that after a restart a redelivery of one of them (its
# PUBACK lost) is recognised (gateway/ingest/redelivery.py).
mqtt_deliveries = sa.Table(
    "mqtt_deliveries",
    metadata,
    sa.Column("client_id", sa.String(128), primary_key=True),
    sa.Column("keys", sa.JSON, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# Time-driven detection is partitioned by household (DESIGN.md §9): each partition is owned by
# one process's detector at a time, by a lease it renews. `read_to` is the readings id up to
# which the partition's households' rule state was last saved: whoever takes the partition
# over goes on from there.
detector_partitions = sa.Table(
    "detector_partitions",
    metadata,
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("owner", sa.String(128)),
    sa.Column("expires_at", UTCDateTime),
    sa.Column("read_to", sa.BigInteger, nullable=False, server_default="0"),
)

# The detectors alive now, each renewing its row: partitions are shared out among them.
detector_members = sa.Table(
    "detector_members",
    metadata,
    sa.Column("owner", sa.String(128), primary_key=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)
