"""Event time in the detector itself: ticks follow the readings it has taken, from the first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.app import Core
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import EventClock
from gateway.observability import GatewayMetrics
from gateway.store.tables import alerts
from tests.integration.harness import HOUSEHOLD, inbound, isolated_settings

T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)  # 09:00 in Asia/Shanghai: 12 h later is before night


@pytest.fixture
async def core(database_url: str, unique_id: str) -> AsyncIterator[Core]:
    """A core on event time with household H001 registered."""
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, unique_id)
    core = Core(settings, EventClock(), GatewayMetrics(), lambda ids: None)
    await core.prepare()
    try:
        async with core.db.begin() as conn:
            await create_household(conn, HouseholdIn.model_validate(HOUSEHOLD), T0)
        await core.household_changed("H001")
        yield core
    finally:
        await core.close()


async def test_a_first_batch_spanning_hours_is_ticked_through_from_its_first_reading(
    core: Core, unique_id: str
):
    """Thirteen hours of a meter nobody uses arrive in one batch (a backlog after a restart):
    the twelve-hour alert opens at 12:00 of event time, not at the first tick after the batch."""
    topic = f"{unique_id}/homes/H001/water-1/telemetry"
    batch = []
    for quarter in range(13 * 4 + 1):
        ts = T0 + timedelta(minutes=15 * quarter)
        body = {"kind": "water_meter", "water_total_l": 1234.5, "ts": ts.timestamp()}
        batch.append(inbound(topic, body, ts))
    await core.pipeline.process_with_retry(batch)
    await core.detector.tick_through(core.clock.now())
    async with core.db.connect() as conn:
        opened = await conn.scalars(
            sa.select(alerts.c.opened_at).where(alerts.c.rule_id == "no_water_use")
        )
        assert list(opened) == [T0 + timedelta(hours=12)]


async def test_the_minutes_a_batch_spans_are_ticked_between_its_readings(
    core: Core, unique_id: str
):
    """A power meter that may be silent for an hour reports at 09:00 and at 10:30, both in one
    batch: its silence in between is found at 10:01, as it would have been live, and ends at
    10:30 (ticked only after the batch, the rules would see the meter heard at 10:30)."""
    batch = []
    for minutes in (0, 90):
        ts = T0 + timedelta(minutes=minutes)
        for device, body in (
            ("power-1", {"kind": "power_meter", "power_w": 80.0}),
            ("smoke-1", {"kind": "smoke_detector", "smoke": False}),
        ):
            topic = f"{unique_id}/homes/H001/{device}/telemetry"
            batch.append(inbound(topic, {**body, "ts": ts.timestamp()}, ts))
    await core.pipeline.process_with_retry(batch)
    async with core.db.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(alerts.c.device_id, alerts.c.opened_at, alerts.c.status).where(
                    alerts.c.rule_id == "device_offline"
                )
            )
        ).all()
    late = T0 + timedelta(minutes=61)
    assert [tuple(row) for row in rows] == [("power-1", late, "resolved")]  # heard again
