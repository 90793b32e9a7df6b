"""One household's hub floods the gateway with invented devices: the visitor gets one message
about it, not hundreds, and the real smoke alarm still opens at once."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.app import Core
from gateway.models import DeviceKind
from gateway.store.readings import install_device
from gateway.store.tables import alerts, dead_letters, devices, notifications
from tests.integration.harness import core_with_household, inbound

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 14:00 in the household's zone


@pytest.fixture
async def core(database_url: str, unique_id: str) -> AsyncIterator[Core]:
    async with core_with_household(database_url, unique_id, T0) as core:
        async with core.db.begin() as conn:
            smoke = await install_device(
                conn, "H001", "smoke-1", DeviceKind.SMOKE_DETECTOR, None, T0
            )
        core.device_installed(smoke)
        yield core


async def select(core: Core, query: sa.Select[Any]) -> list[dict[str, Any]]:
    async with core.db.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


async def test_an_invented_device_flood_is_capped_shed_and_grouped(core: Core, unique_id: str):
    day_old = (T0 - timedelta(days=1)).timestamp()
    flood = [
        inbound(
            f"{unique_id}/homes/H001/fake-{n}/telemetry",
            {"kind": "water_meter", "water_total_l": 1.0, "ts": day_old},
            T0,
        )
        for n in range(2000)
    ]
    for start in range(0, len(flood), 500):
        await core.pipeline.process(flood[start : start + 500])
    smoke = inbound(f"{unique_id}/homes/H001/smoke-1/telemetry", {"smoke": True}, T0)
    await core.pipeline.process([smoke])
    await core.detector.tick(T0 + timedelta(minutes=1))

    letters = Counter(d["reason_code"] for d in await select(core, sa.select(dead_letters)))
    # A burst of 1,200 is taken, the rest shed (one dead letter a minute); of those taken,
    # 40 devices register themselves and the others wait for an installer.
    assert letters == {"device_limit": 1160, "rate_limited": 1}
    assert core.pipeline.metrics.registry.get_sample_value("iot_gateway_shed_messages_total") == 800
    new = await select(core, sa.select(devices).where(devices.c.review == "new"))
    assert len(new) == 40
    opened = await select(core, sa.select(alerts))
    assert sorted((a["rule_id"], a["device_id"], a["severity"]) for a in opened) == [
        ("device_offline", "*", "medium"),
        ("smoke_alarm", "smoke-1", "critical"),
    ]
    (several,) = [a for a in opened if a["device_id"] == "*"]
    assert several["evidence"]["count"] == 40
    # The smoke alarm's first step (visitor and first relative, SMS and call) and one SMS to
    # the visitor about the devices.
    sent = await select(core, sa.select(notifications))
    assert Counter(n["alert_id"] for n in sent) == {
        next(a["id"] for a in opened if a["rule_id"] == "smoke_alarm"): 4,
        several["id"]: 1,
    }


async def test_an_alarm_from_a_device_over_the_quota_still_opens(core: Core, unique_id: str):
    for n in range(40):
        await core.pipeline.process(
            [inbound(f"{unique_id}/homes/H001/fake-{n}/telemetry", {"water_total_l": 1.0}, T0)]
        )
    topic = f"{unique_id}/homes/H001/kitchen-smoke/telemetry"
    result = await core.pipeline.process([inbound(topic, {"smoke": True, "battery_pct": 90}, T0)])
    assert [d.reason_code for d in result.dead_letters] == ["device_limit"]
    (alert,) = await select(core, sa.select(alerts))
    assert (alert["rule_id"], alert["device_id"]) == ("smoke_alarm", "kitchen-smoke")
    # The installer registers it: its readings are taken from then on.
    async with core.db.begin() as conn:
        device = await install_device(
            conn, "H001", "kitchen-smoke", DeviceKind.SMOKE_DETECTOR, "厨房烟感", T0
        )
    core.device_installed(device)
    again = await core.pipeline.process([inbound(topic, {"battery_pct": 90}, T0)])
    assert (again.readings, again.dead_letters) == (1, [])


async def test_a_hub_reporting_made_up_devices_offline_is_two_alerts_not_thousands(
    core: Core, unique_id: str
):
    statuses = [
        inbound(f"{unique_id}/homes/H001/made-up-{n}/status", "offline", T0) for n in range(2000)
    ]
    for start in range(0, len(statuses), 500):
        await core.pipeline.process(statuses[start : start + 500])
    opened = await select(core, sa.select(alerts))
    # The first device's last will, then the household's alert for all that follow.
    assert sorted(a["device_id"] for a in opened) == ["*", "made-up-0"]
    assert len(await select(core, sa.select(notifications))) == 2
