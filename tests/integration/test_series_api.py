"""GET /api/households/{id}/series: a day or a week of water, electricity and vitals from the
stored readings, every bucket present, meter resets skipped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.models import DeviceKind, Metric, Reading
from gateway.store.readings import insert_readings, update_device_state
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

NOW = datetime(2026, 11, 30, 4, 7, tzinfo=UTC)
TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def reading(device: str, metric: Metric, value: float, ts: str) -> Reading:
    kind = {
        "water": DeviceKind.WATER_METER,
        "power": DeviceKind.POWER_METER,
        "hm": DeviceKind.HEALTH_MONITOR,
    }[device.split("-")[0]]
    return Reading("H001", device, kind, metric, value, None, at(ts))


W, E, P = Metric.WATER_TOTAL_L, Metric.ENERGY_TOTAL_KWH, Metric.POWER_W
READINGS = [
    reading("water-1", W, 1000.0, "2026-11-29 04:00"),  # before the day: where it counts from
    reading("water-1", W, 1010.0, "2026-11-29 04:20"),
    reading("water-1", W, 1012.0, "2026-11-29 04:25"),
    reading("water-1", W, 1012.0, "2026-11-29 05:01"),  # used nothing: 0, not a gap
    reading("water-1", W, 5.0, "2026-11-29 06:00"),  # meter replaced: the drop counts nothing
    reading("water-1", W, 8.0, "2026-11-29 06:10"),
    reading("water-2", W, 100.0, "2026-11-29 06:05"),  # a second meter, first heard here
    reading("water-2", W, 101.5, "2026-11-29 06:20"),
    reading("power-1", E, 5321.0, "2026-11-30 03:50"),
    reading("power-1", E, 5321.25, "2026-11-30 04:05"),
    reading("power-1", P, 800.0, "2026-11-30 03:46"),
    reading("power-1", P, 900.0, "2026-11-30 03:59"),
    reading("power-1", P, 1200.0, "2026-11-30 04:05"),
    reading("power-1", P, 5000.0, "2026-11-30 04:20"),  # a device clock ahead: after the range
    reading("hm-1", Metric.HEART_RATE_BPM, 64, "2026-11-22 01:00"),  # before the week
    reading("hm-1", Metric.HEART_RATE_BPM, 72, "2026-11-29 20:00"),
    reading("hm-1", Metric.HEART_RATE_BPM, 75, "2026-11-30 00:00"),
    reading("hm-1", Metric.SPO2_PCT, 97, "2026-11-30 00:00"),
]


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        await register(gw, HOUSEHOLD)
        async with gw.db.begin() as conn:
            await insert_readings(conn, READINGS, NOW)
            await update_device_state(conn, READINGS, NOW)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def series(client: httpx.AsyncClient, **params: str) -> Any:
    response = await client.get("/api/households/H001/series", params=params, headers=ADMIN)
    assert response.status_code == 200, response.text
    return response.json()


def present(points: list[list[Any]]) -> dict[str, float]:
    return {t: v for t, v in points if v is not None}


async def test_a_day_in_quarter_hours_with_gaps_null_and_resets_skipped(
    client: httpx.AsyncClient,
):
    day = await series(client, range="24h")
    assert (day["range"], day["bucket_s"]) == ("24h", 900)
    assert (day["start"], day["end"]) == ("2026-11-29T04:15:00Z", "2026-11-30T04:15:00Z")
    for name in ("water_l", "energy_kwh", "power_w"):
        times = [t for t, _ in day[name]]
        assert len(times) == 96, name
        assert (times[0], times[-1]) == ("2026-11-29T04:15:00Z", "2026-11-30T04:00:00Z")
    assert present(day["water_l"]) == {
        "2026-11-29T04:15:00Z": 12.0,
        "2026-11-29T05:00:00Z": 0.0,
        "2026-11-29T06:00:00Z": 3.0,
        "2026-11-29T06:15:00Z": 1.5,
    }
    assert present(day["energy_kwh"]) == {"2026-11-30T04:00:00Z": 0.25}
    assert present(day["power_w"]) == {
        "2026-11-30T03:45:00Z": 850.0,
        "2026-11-30T04:00:00Z": 1200.0,
    }
    assert day["vitals"] == {
        "heart_rate_bpm": [["2026-11-29T20:00:00Z", 72.0], ["2026-11-30T00:00:00Z", 75.0]],
        "spo2_pct": [["2026-11-30T00:00:00Z", 97.0]],
        "bp_systolic_mmhg": [],
        "bp_diastolic_mmhg": [],
        "body_temp_c": [],
    }


async def test_a_week_in_hours(client: httpx.AsyncClient):
    week = await series(client, range="7d")
    assert (week["bucket_s"], week["start"], week["end"]) == (
        3600,
        "2026-11-23T05:00:00Z",
        "2026-11-30T05:00:00Z",
    )
    assert len(week["water_l"]) == 168
    # The first reading of the week has nothing before it: it only sets where use counts from.
    assert present(week["water_l"]) == {
        "2026-11-29T04:00:00Z": 12.0,
        "2026-11-29T05:00:00Z": 0.0,
        "2026-11-29T06:00:00Z": 4.5,
    }
    # The last hour ends after now: the reading stamped 04:20 falls in it.
    assert present(week["power_w"]) == {
        "2026-11-30T03:00:00Z": 850.0,
        "2026-11-30T04:00:00Z": 3100.0,
    }
    assert [t for t, _ in week["vitals"]["heart_rate_bpm"]] == [
        "2026-11-29T20:00:00Z",
        "2026-11-30T00:00:00Z",
    ]


async def test_the_range_is_a_day_by_default_and_nothing_else(client: httpx.AsyncClient):
    assert (await series(client))["range"] == "24h"
    bad = await client.get("/api/households/H001/series?range=30d", headers=ADMIN)
    assert bad.status_code == 422
    missing = await client.get("/api/households/H404/series", headers=ADMIN)
    assert missing.status_code == 404


async def test_a_household_without_readings_has_every_bucket_empty(
    client: httpx.AsyncClient, gateway: Gateway
):
    await register(gateway, {**HOUSEHOLD, "id": "H002"})
    empty = (await client.get("/api/households/H002/series", headers=ADMIN)).json()
    assert len(empty["water_l"]) == 96
    assert all(v is None for name in ("water_l", "energy_kwh", "power_w") for _, v in empty[name])
    assert all(v == [] for v in empty["vitals"].values())


async def test_vitals_are_the_latest_2000_of_each_sign(client: httpx.AsyncClient, gateway: Gateway):
    # A monitor reporting every 30 s for most of the day: far more than a chart needs.
    many = [
        Reading(
            "H001",
            "hm-1",
            DeviceKind.HEALTH_MONITOR,
            Metric.HEART_RATE_BPM,
            60 + k % 30,
            None,
            NOW - timedelta(seconds=30 * k),
        )
        for k in range(1, 2101)
    ]
    async with gateway.db.begin() as conn:
        await insert_readings(conn, many, NOW)
        await update_device_state(conn, many, NOW)
    heart = (await series(client))["vitals"]["heart_rate_bpm"]
    assert len(heart) == 2000
    assert heart[-1][0] == "2026-11-30T04:06:30Z"
    assert heart[0][0] == (NOW - timedelta(seconds=30 * 2000)).strftime("%Y-%m-%dT%H:%M:%SZ")
