"""GET /api/reports/response over a real database: rows inserted with exact times."""

from __future__ import annotations

import copy
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.store.tables import alerts, escalations
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# 10:00 on 10 November in Shanghai, the gateway's zone.
T0 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)
_devices = itertools.count()


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id) as gw:
        await household(gw, "H001", "某村")
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def household(
    gateway: Gateway, household_id: str, village: str, township: str = "某镇"
) -> None:
    body = copy.deepcopy(HOUSEHOLD)
    body["id"] = household_id
    body["address"] |= {"village": village, "township": township}
    await register(gateway, body)


async def alert(
    gateway: Gateway,
    opened_at: datetime,
    acked_after: timedelta | None,
    *,
    household_id: str = "H001",
    severity: str = "high",
    rule: str = "smoke_alarm",
    status: str | None = None,
    escalation_started_at: datetime | None = None,
    flagged: bool = False,
    resolved_by: str | None = None,
) -> int:
    """An alert as the escalation leaves it; acked_after counts from the escalation's start."""
    started = escalation_started_at or opened_at
    acked_at = None if acked_after is None else started + acked_after
    values: dict[str, Any] = {
        "household_id": household_id,
        "device_id": f"dev-{next(_devices)}",  # one active alert per device and rule
        "rule_id": rule,
        "severity": severity,
        "status": status or ("acknowledged" if acked_at else "escalated"),
        "summary": rule,
        "evidence": {},
        "opened_at": opened_at,
        "last_seen_at": opened_at,
        "acknowledged_at": acked_at,
        "acknowledged_by": "李敏" if acked_at else None,
        "flagged_at": started + timedelta(minutes=10) if flagged else None,
        "flag_reason": "reached the control room" if flagged else None,
        "resolved_at": opened_at + timedelta(hours=1) if resolved_by else None,
        "resolved_by": resolved_by,
        "updated_at": opened_at,
    }
    async with gateway.db.begin() as conn:
        result = await conn.execute(sa.insert(alerts).values(**values).returning(alerts.c.id))
        alert_id = int(result.scalar_one())
        if escalation_started_at is not None:
            await conn.execute(
                sa.insert(escalations).values(
                    alert_id=alert_id,
                    policy={},
                    state="done",
                    started_at=escalation_started_at,
                    updated_at=escalation_started_at,
                )
            )
    return alert_id


async def report(client: httpx.AsyncClient, month: str) -> dict[str, Any]:
    response = await client.get("/api/reports/response", params={"month": month}, headers=AUTH)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def within(times: dict[str, Any]) -> dict[int, float | None]:
    return {band["minutes"]: band["share"] for band in times["within"]}


async def test_shares_within_each_band(client: httpx.AsyncClient, gateway: Gateway):
    for after in (timedelta(seconds=30), timedelta(minutes=2), timedelta(minutes=10), None):
        await alert(gateway, T0, after)
    body = await report(client, "2026-11")
    overall = body["overall"]
    assert (overall["alerts"], overall["acknowledged"]) == (4, 3)
    assert within(overall) == {1: 0.25, 3: 0.5, 5: 0.5, 15: 0.75}
    assert [b["acknowledged"] for b in overall["within"]] == [1, 2, 2, 3]
    assert (overall["median_s"], overall["p90_s"]) == (120.0, 600.0)
    assert body["standard"] == [
        {"within_s": 60, "share": 0.975, "achieved": 0.25, "met": False},
        {"within_s": 180, "share": 0.99, "achieved": 0.5, "met": False},
    ]
    assert body["standard_met"] is False
    assert (body["month"], body["zone"]) == ("2026-11", "Asia/Shanghai")
    assert (body["start"], body["end"]) == ("2026-10-31T16:00:00Z", "2026-11-30T16:00:00Z")


async def test_the_standard_is_met_when_nearly_every_alert_is_answered_in_a_minute(
    client: httpx.AsyncClient, gateway: Gateway
):
    for i in range(40):
        await alert(gateway, T0 + timedelta(minutes=i), timedelta(seconds=45))
    body = await report(client, "2026-11")
    assert body["standard_met"] is True
    assert [t["met"] for t in body["standard"]] == [True, True]


async def test_months_begin_at_midnight_in_shanghai(client: httpx.AsyncClient, gateway: Gateway):
    october_last = await alert(gateway, datetime(2026, 10, 31, 15, 59, tzinfo=UTC), None)
    november_first = await alert(gateway, datetime(2026, 10, 31, 16, 30, tzinfo=UTC), None)
    november_last = await alert(gateway, datetime(2026, 11, 30, 15, 59, 59, tzinfo=UTC), None)
    december_first = await alert(gateway, datetime(2026, 11, 30, 16, 0, tzinfo=UTC), None)

    async def never_acknowledged(month: str) -> list[int]:
        return [u["id"] for u in (await report(client, month))["unacknowledged"]]

    assert await never_acknowledged("2026-10") == [october_last]
    assert await never_acknowledged("2026-11") == [november_first, november_last]
    assert await never_acknowledged("2026-12") == [december_first]


async def test_an_alert_held_overnight_counts_from_the_end_of_quiet_hours(
    client: httpx.AsyncClient, gateway: Gateway
):
    # Opened at 22:00 on 31 October (Shanghai), held until 07:00 on 1 November.
    opened = datetime(2026, 10, 31, 14, 0, tzinfo=UTC)
    morning = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)
    await alert(
        gateway, opened, timedelta(seconds=50), severity="low", escalation_started_at=morning
    )
    # Seen on the dashboard at midnight, before its escalation started: no time at all.
    await alert(
        gateway,
        opened,
        timedelta(hours=-7),
        severity="low",
        rule="no_water_use",
        escalation_started_at=morning,
    )
    assert (await report(client, "2026-10"))["overall"]["alerts"] == 0
    body = await report(client, "2026-11")
    assert body["overall"]["alerts"] == 2
    assert within(body["overall"])[1] == 1.0
    assert body["overall"]["median_s"] == 0.0
    assert body["overall"]["p90_s"] == 50.0


async def test_groups_by_severity_and_by_village(client: httpx.AsyncClient, gateway: Gateway):
    await household(gateway, "H002", "东村")
    await household(gateway, "H003", "", township="西镇")
    fast, slow = timedelta(seconds=20), timedelta(minutes=4)
    await alert(gateway, T0, fast, severity="critical")
    await alert(gateway, T0, slow, severity="critical", rule="fall")
    await alert(gateway, T0, None, household_id="H002", severity="medium")
    await alert(gateway, T0, fast, household_id="H003", severity="low")

    body = await report(client, "2026-11")
    severities = {s["severity"]: (s["alerts"], within(s)) for s in body["by_severity"]}
    assert [s["severity"] for s in body["by_severity"]] == ["critical", "medium", "low"]
    assert severities["critical"] == (2, {1: 0.5, 3: 0.5, 5: 1.0, 15: 1.0})
    assert severities["medium"] == (1, {1: 0.0, 3: 0.0, 5: 0.0, 15: 0.0})

    places = [
        (v["county"], v["township"], v["village"], v["alerts"], v["acknowledged"])
        for v in body["by_village"]
    ]
    assert sorted(places) == sorted(
        [
            ("某县", "某镇", "某村", 2, 2),
            ("某县", "某镇", "东村", 1, 0),
            ("某县", "西镇", "(no village)", 1, 1),
        ]
    )
    village = next(v for v in body["by_village"] if v["village"] == "某村")
    assert (village["median_s"], village["p90_s"]) == (20.0, 240.0)


async def test_alerts_never_acknowledged_are_listed(client: httpx.AsyncClient, gateway: Gateway):
    await household(gateway, "H002", "东村")
    await alert(gateway, T0, timedelta(seconds=30))
    flagged = await alert(gateway, T0, None, rule="sos_button", severity="critical", flagged=True)
    cleared = await alert(
        gateway,
        T0 + timedelta(hours=1),
        None,
        household_id="H002",
        rule="device_offline",
        severity="medium",
        status="resolved",
        resolved_by="system",
    )
    body = await report(client, "2026-11")
    assert body["unacknowledged"] == [
        {
            "id": flagged,
            "rule": "sos_button",
            "severity": "critical",
            "household_id": "H001",
            "village": "某村",
            "started_at": "2026-11-10T02:00:00Z",
            "status": "escalated",
            "flagged": True,
            "resolved_by": None,
            "auto_resolved": False,
        },
        {
            "id": cleared,
            "rule": "device_offline",
            "severity": "medium",
            "household_id": "H002",
            "village": "东村",
            "started_at": "2026-11-10T03:00:00Z",
            "status": "resolved",
            "flagged": False,
            "resolved_by": "system",
            "auto_resolved": True,
        },
    ]


async def test_a_month_without_alerts_is_an_empty_report(client: httpx.AsyncClient):
    body = await report(client, "2031-02")
    assert body["overall"]["alerts"] == 0
    assert within(body["overall"]) == {1: None, 3: None, 5: None, 15: None}
    assert body["standard_met"] is None
    assert (body["by_severity"], body["by_village"], body["unacknowledged"]) == ([], [], [])


@pytest.mark.parametrize("month", ["2026-13", "junk", "2026-00", "2026-1", "0000-01", ""])
async def test_a_month_that_is_not_one_is_422(client: httpx.AsyncClient, month: str):
    response = await client.get("/api/reports/response", params={"month": month}, headers=AUTH)
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "month"]
    assert set(error) == {"loc", "msg", "type"}


async def test_the_month_is_required(client: httpx.AsyncClient):
    response = await client.get("/api/reports/response", headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "missing"


async def test_the_report_needs_the_token(client: httpx.AsyncClient):
    response = await client.get("/api/reports/response", params={"month": "2026-11"})
    assert response.status_code == 401
