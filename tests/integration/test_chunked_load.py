"""The detector's start-up load, read a range of households at a time, restores every
household as a load in one piece does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from gateway.app import Core
from gateway.care.households import HouseholdIn, create_household
from gateway.clock import ManualClock
from gateway.observability import GatewayMetrics
from gateway.store.chunks import household_ranges
from gateway.store.tables import households
from tests.integration.harness import HOUSEHOLD, core_with_household, inbound, isolated_settings

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # 08:00 in the households' zone
HOMES = ["H001", "H002", "H003", "H004", "H005"]


async def fill(database_url: str, prefix: str) -> None:
    """Five households, each with a water meter, a power meter and a health monitor that have
    reported over a morning, their rule state saved."""
    async with core_with_household(database_url, prefix, T0) as core:
        async with core.db.begin() as conn:
            for hid in HOMES[1:]:
                await create_household(
                    conn, HouseholdIn.model_validate(HOUSEHOLD | {"id": hid}), T0
                )
        for hid in HOMES[1:]:
            await core.household_changed(hid)
        for step in range(6):
            at = T0 + timedelta(minutes=15 * step)
            core.clock.set(at)
            batch = []
            for k, hid in enumerate(HOMES):
                home = f"{prefix}/homes/{hid}"
                water = {"water_total_l": 1000.0 + 10 * k + 5 * step}
                batch += [
                    inbound(f"{home}/water-1/telemetry", water, at),
                    inbound(f"{home}/power-1/telemetry", {"power_w": 300.0 + 100 * step}, at),
                    inbound(f"{home}/hm-1/telemetry", {"heart_rate_bpm": 60 + k}, at),
                ]
            await core.pipeline.process(batch)
        assert await core.detector.save_state() == len(HOMES)


async def loaded(database_url: str, prefix: str, chunk: int) -> dict[str, Any]:
    """What the rules know of each household after a start-up that loads `chunk` at a time."""
    settings = isolated_settings("mqtt://127.0.0.1:1", database_url, prefix)
    core = Core(settings, ManualClock(T0 + timedelta(hours=2)), GatewayMetrics(), lambda _: None)
    core.detector.load_chunk = chunk
    try:
        await core.prepare()
        engine = core.detector.engine
        return {
            hid: {
                "saved": engine.saved_state(hid),
                "devices": {
                    device_id: (view.kind, view.source, view.last_seen, dict(view.values))
                    for device_id, view in engine.state(hid).devices.items()
                },
            }
            for hid in HOMES
        }
    finally:
        await core.close()


async def test_a_load_in_ranges_of_households_restores_what_a_load_in_one_piece_does(
    database_url: str, unique_id: str
):
    await fill(database_url, unique_id)
    whole = await loaded(database_url, unique_id, 1_000_000)
    for hid in HOMES:  # something to compare: every home's devices, values and log
        assert set(whole[hid]["devices"]) == {"water-1", "power-1", "hm-1"}
        assert whole[hid]["devices"]["hm-1"][3]
        assert whole[hid]["saved"]["water"], hid
        assert whole[hid]["saved"]["counters"]["water-1"], hid
    for chunk in (1, 2, 3):
        assert await loaded(database_url, unique_id, chunk) == whole, chunk


async def test_household_ranges_cover_every_household_once(database_url: str, unique_id: str):
    async with core_with_household(database_url, unique_id, T0) as core:
        async with core.db.begin() as conn:
            for n in range(2, 12):
                home = HOUSEHOLD | {"id": f"H{n:03d}"}
                await create_household(conn, HouseholdIn.model_validate(home), T0)
        async with core.db.connect() as conn:
            total = await conn.scalar(sa.select(sa.func.count()).select_from(households))
            assert total == 11
            for size in (1, 2, 3, 4, 11, 50):
                ranges = await household_ranges(conn, size)
                counts = [
                    await conn.scalar(
                        sa.select(sa.func.count())
                        .select_from(households)
                        .where(r.where(households.c.id))
                    )
                    for r in ranges
                ]
                assert sum(counts) == total, size
                assert counts[:-1] == [size] * (len(counts) - 1), size
                assert 1 <= counts[-1] <= size, size
                assert ranges[0].start is None
                assert ranges[-1].end is None
