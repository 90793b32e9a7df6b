"""Per-household rule settings and away periods over the HTTP API, on a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.models import DeviceKind, Metric, Reading
from gateway.rules.activity import AwayPeriod
from gateway.rules.routine import NoWaterUse
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)
RULES = "/api/households/H001/rules"
AWAY = "/api/households/H001/away"


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    # On a manual clock: away periods are judged against "now".
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        created = await c.post("/api/households", json=HOUSEHOLD, headers=AUTH)
        assert created.status_code == 201, created.text
        yield c


def clock_of(gateway: Gateway) -> ManualClock:
    assert isinstance(gateway.clock, ManualClock)
    return gateway.clock


def at(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


# --- rule settings ------------------------------------------------------------------------------


async def test_a_household_without_overrides_runs_on_the_defaults(client: httpx.AsyncClient):
    response = await client.get(RULES, headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["household_id"] == "H001"
    assert body["overrides"] == {}
    assert body["effective"] == body["defaults"]
    assert body["defaults"]["no_water_use"]["window_h"] == 12
    assert body["updated_at"] is None
    assert body["updated_by"] is None


async def test_an_override_shows_in_overrides_and_effective(client: httpx.AsyncClient):
    overrides = {
        "no_water_use": {"window_h": 16},
        "abnormal_vitals": {"limits": {"bp_systolic_mmhg": {"low": 100, "high": 200}}},
    }
    put = await client.put(RULES, json=overrides, headers=AUTH)
    assert put.status_code == 200, put.text
    body = (await client.get(RULES, headers=AUTH)).json()
    assert body == put.json()
    assert body["overrides"] == overrides
    assert body["effective"]["no_water_use"]["window_h"] == 16
    limits = body["effective"]["abnormal_vitals"]["limits"]
    assert limits["bp_systolic_mmhg"] == {"low": 100, "high": 200}
    assert (
        limits["heart_rate_bpm"] == body["defaults"]["abnormal_vitals"]["limits"]["heart_rate_bpm"]
    )
    assert body["defaults"]["no_water_use"]["window_h"] == 12
    assert body["updated_by"] == "admin"
    assert body["updated_at"].startswith("2026-11-29T06:00:00")


async def test_a_value_equal_to_the_default_is_not_kept(client: httpx.AsyncClient):
    body = (
        await client.put(
            RULES, json={"no_water_use": {"window_h": 12, "min_litres": 5}}, headers=AUTH
        )
    ).json()
    assert body["overrides"] == {"no_water_use": {"min_litres": 5}}


@pytest.mark.parametrize(
    ("overrides", "loc"),
    [
        ({"no_water_use": {"window_h": -1}}, ["body", "no_water_use", "window_h"]),
        ({"no_such_rule": {"enabled": False}}, ["body", "no_such_rule"]),
        ({"no_water_use": {"window_h": "all day"}}, ["body", "no_water_use", "window_h"]),
        ({"no_water_use": {"windows": 3}}, ["body", "no_water_use", "windows"]),
        ({"no_water_use": 16}, ["body", "no_water_use"]),
        ({"quiet_hours": {"severities": ["critical"]}}, ["body", "quiet_hours"]),
        ([1, 2], ["body"]),
    ],
)
async def test_invalid_overrides_are_refused_naming_the_key(
    client: httpx.AsyncClient, overrides: Any, loc: list[str]
):
    await client.put(RULES, json={"no_power_use": {"window_h": 20}}, headers=AUTH)
    response = await client.put(RULES, json=overrides, headers=AUTH)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == loc
    assert error["msg"]
    # What was stored before stays.
    body = (await client.get(RULES, headers=AUTH)).json()
    assert body["overrides"] == {"no_power_use": {"window_h": 20}}


async def test_hostile_bodies_are_refused(client: httpx.AsyncClient):
    huge = {"no_water_use": {"window_h": 16, "x": "a" * 20_000}}
    assert (await client.put(RULES, json=huge, headers=AUTH)).status_code == 413
    deep = "[" * 5_000 + "]" * 5_000
    nested = await client.put(RULES, content=deep, headers=AUTH)
    assert nested.status_code == 422
    not_a_number = '{"no_water_use": {"window_h": NaN}}'
    assert (await client.put(RULES, content=not_a_number, headers=AUTH)).status_code == 422
    assert (await client.put(RULES, content="{oops", headers=AUTH)).status_code == 422
    assert (await client.get(RULES, headers=AUTH)).json()["overrides"] == {}


async def test_an_empty_object_removes_the_overrides(client: httpx.AsyncClient):
    await client.put(RULES, json={"no_water_use": {"window_h": 16}}, headers=AUTH)
    cleared = await client.put(RULES, json={}, headers=AUTH)
    assert cleared.status_code == 200
    body = (await client.get(RULES, headers=AUTH)).json()
    assert body["overrides"] == {}
    assert body["effective"] == body["defaults"]
    assert body["updated_at"] is None


async def test_settings_need_the_token_and_a_known_household(client: httpx.AsyncClient):
    for method, path in [
        ("GET", RULES),
        ("PUT", RULES),
        ("GET", AWAY),
        ("POST", AWAY),
        ("DELETE", f"{AWAY}/1"),
    ]:
        response = await client.request(method, path)
        assert response.status_code == 401, (method, path)
    missing = "/api/households/H404"
    assert (await client.get(f"{missing}/rules", headers=AUTH)).status_code == 404
    assert (await client.put(f"{missing}/rules", json={}, headers=AUTH)).status_code == 404
    assert (await client.get(f"{missing}/away", headers=AUTH)).status_code == 404
    away = {"until": at(24)}
    assert (await client.post(f"{missing}/away", json=away, headers=AUTH)).status_code == 404


async def test_the_engine_takes_the_new_settings(client: httpx.AsyncClient, gateway: Gateway):
    put = await client.put(RULES, json={"no_water_use": {"window_h": 20}}, headers=AUTH)
    assert put.status_code == 200
    rules = gateway.detector.engine.state("H001").rules
    assert rules is not None
    [no_water] = [r for r in rules.rules if isinstance(r, NoWaterUse)]
    assert no_water.config.window_h == 20

    await client.put(RULES, json={}, headers=AUTH)
    assert gateway.detector.engine.state("H001").rules is None  # the engine's defaults again


# --- away periods -------------------------------------------------------------------------------


async def test_an_away_period_is_recorded_and_listed(client: httpx.AsyncClient):
    created = await client.post(
        AWAY,
        json={"from": "2026-11-29T14:00:00+08:00", "until": at(72), "note": "在儿子家"},
        headers=AUTH,
    )
    assert created.status_code == 201, created.text
    record = created.json()
    assert record == {
        "id": record["id"],
        "household_id": "H001",
        "from": "2026-11-29T06:00:00Z",
        "until": "2026-12-02T06:00:00Z",
        "note": "在儿子家",
        "created_at": "2026-11-29T06:00:00Z",
        "created_by": "admin",
        "active": True,
    }
    listed = (await client.get(AWAY, headers=AUTH)).json()
    assert listed == [record]


async def test_from_defaults_to_now(client: httpx.AsyncClient):
    record = (await client.post(AWAY, json={"until": at(5)}, headers=AUTH)).json()
    assert record["from"] == "2026-11-29T06:00:00Z"
    assert record["note"] == ""
    assert record["active"] is True


async def test_past_periods_are_listed_only_when_asked(client: httpx.AsyncClient, gateway: Gateway):
    await client.post(AWAY, json={"until": at(5)}, headers=AUTH)
    clock_of(gateway).advance(timedelta(hours=6))
    assert (await client.get(AWAY, headers=AUTH)).json() == []
    past = (await client.get(f"{AWAY}?include_past=true", headers=AUTH)).json()
    assert [p["active"] for p in past] == [False]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"from": at(5), "until": at(5)}, "until", "later than from"),
        ({"from": at(5), "until": at(1)}, "until", "later than from"),
        ({"until": at(-1)}, "until", "later than from"),
        ({"from": at(0), "until": at(24 * 91)}, "until", "90 days"),
        ({"until": "2026-11-30T08:00:00"}, "until", "timezone"),
        ({"from": "2026-11-29T08:00:00", "until": at(24)}, "from", "timezone"),
        ({}, "until", "required"),
        ({"until": at(24), "note": "x" * 201}, "note", "200"),
        ({"until": at(24), "reason": "x"}, "reason", "Extra"),
    ],
)
async def test_invalid_away_periods_are_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, words: str
):
    response = await client.post(AWAY, json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", field]
    assert words in error["msg"]
    assert (await client.get(f"{AWAY}?include_past=true", headers=AUTH)).json() == []


async def test_deleting_a_started_period_ends_it_now(client: httpx.AsyncClient, gateway: Gateway):
    away_id = (await client.post(AWAY, json={"until": at(48)}, headers=AUTH)).json()["id"]
    clock_of(gateway).advance(timedelta(hours=3))
    response = await client.delete(f"{AWAY}/{away_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    change = response.json()
    assert change["action"] == "ended"
    assert change["away"]["until"] == "2026-11-29T09:00:00Z"
    assert change["away"]["active"] is False
    assert (await client.get(AWAY, headers=AUTH)).json() == []
    past = (await client.get(f"{AWAY}?include_past=true", headers=AUTH)).json()
    assert [(p["id"], p["until"]) for p in past] == [(away_id, "2026-11-29T09:00:00Z")]
    # Over now: it stays, for the routine learning to leave its days out.
    again = await client.delete(f"{AWAY}/{away_id}", headers=AUTH)
    assert again.status_code == 409
    engine = gateway.detector.engine
    assert engine.state("H001").log.away == [AwayPeriod(NOW, NOW + timedelta(hours=3))]


async def test_deleting_a_future_period_removes_it(client: httpx.AsyncClient, gateway: Gateway):
    body = {"from": at(24), "until": at(48)}
    away_id = (await client.post(AWAY, json=body, headers=AUTH)).json()["id"]
    response = await client.delete(f"{AWAY}/{away_id}", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["action"] == "deleted"
    assert (await client.get(f"{AWAY}?include_past=true", headers=AUTH)).json() == []
    assert gateway.detector.engine.state("H001").log.away == []
    assert (await client.delete(f"{AWAY}/{away_id}", headers=AUTH)).status_code == 404


async def test_another_households_period_is_not_found(client: httpx.AsyncClient):
    other = {**HOUSEHOLD, "id": "H002"}
    assert (await client.post("/api/households", json=other, headers=AUTH)).status_code == 201
    theirs = await client.post("/api/households/H002/away", json={"until": at(5)}, headers=AUTH)
    away_id = theirs.json()["id"]
    assert (await client.delete(f"{AWAY}/{away_id}", headers=AUTH)).status_code == 404
    assert (await client.get("/api/households/H002/away", headers=AUTH)).json() != []


async def test_the_engine_takes_the_away_period(client: httpx.AsyncClient, gateway: Gateway):
    body = {"from": at(1), "until": at(30)}
    assert (await client.post(AWAY, json=body, headers=AUTH)).status_code == 201
    assert gateway.detector.engine.state("H001").log.away == [
        AwayPeriod(NOW + timedelta(hours=1), NOW + timedelta(hours=30))
    ]


# --- activity and the learned routine -----------------------------------------------------------


def water_reading(ts: datetime, total: float) -> Reading:
    return Reading("H001", "water-1", DeviceKind.WATER_METER, Metric.WATER_TOTAL_L, total, "L", ts)


async def test_activity_shows_learning_then_the_learned_routine(
    gateway: Gateway, client: httpx.AsyncClient
):
    empty = await client.get("/api/households/H001/activity", headers=AUTH)
    assert empty.status_code == 200, empty.text
    assert empty.json()["routine"] == {
        "status": "learning",
        "days_known": 0,
        "min_days": 7,
        "usual_start": None,
        "late_bound": None,
        "spread_min": None,
        "weekday_aware": None,
    }
    assert empty.json()["water_used_12h_l"] is None
    # Eight mornings: water at 06:30 and again at 06:50 Beijing time (22:30 / 22:50 UTC).
    total = 100.0
    first = NOW.replace(hour=0) - timedelta(days=8)
    for day in range(8):
        wake = first + timedelta(days=day, hours=-1, minutes=-30)  # 22:30 UTC the day before
        for minutes, litres in ((-10, 0.0), (0, 5.0), (20, 3.0)):
            total += litres
            at = wake + timedelta(minutes=minutes)
            gateway.detector.engine.on_reading(water_reading(at, total))
    # 10:00 Beijing on the eighth morning: seven days of history before it.
    clock_of(gateway).set(first + timedelta(days=7, hours=2))
    body = (await client.get("/api/households/H001/activity", headers=AUTH)).json()
    routine = body["routine"]
    assert (routine["status"], routine["days_known"]) == ("learned", 7)
    usual = datetime.fromisoformat(routine["usual_start"])
    assert usual.astimezone(UTC).strftime("%H:%M") == "22:30"
    late = datetime.fromisoformat(routine["late_bound"])
    assert late - usual == timedelta(minutes=60)
    assert body["timezone"] == "Asia/Shanghai"
    assert set(body["last_activity"]) == {"water"}
    assert body["water_used_12h_l"] == 8.0
    assert body["away_until"] is None


async def test_activity_of_an_unknown_household_is_404(client: httpx.AsyncClient):
    response = await client.get("/api/households/NOPE/activity", headers=AUTH)
    assert response.status_code == 404
    assert (await client.get("/api/households/H001/activity")).status_code == 401
