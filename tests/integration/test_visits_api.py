"""GET /api/households/{id}/visits over a real database."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.care.visit_form import VisitForm
from gateway.store.tables import alerts
from gateway.store.visits import VisitMethod, add_visit
from tests.integration.harness import api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 5, 52, tzinfo=UTC)
# A run of 7 digits or more (a landline, a mobile), or a mobile written in 3-4-4 groups.
PHONE_LIKE = re.compile(r"\d{7,}|1[3-9]\d(?:[ -]?\d{4}){2}")


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id) as gw:
        await register(gw)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def smoke_alert(gateway: Gateway) -> int:
    async with gateway.db.begin() as conn:
        result = await conn.execute(
            sa.insert(alerts)
            .values(
                household_id="H001",
                device_id="smoke-1",
                rule_id="smoke_alarm",
                severity="critical",
                status="resolved",
                summary="smoke detected",
                evidence={},
                opened_at=T0,
                last_seen_at=T0,
                acknowledged_at=T0 + timedelta(seconds=40),
                acknowledged_by="李敏",
                resolved_at=T0 + timedelta(minutes=20),
                resolved_by="李敏",
                updated_at=T0,
            )
            .returning(alerts.c.id)
        )
        return int(result.scalar_one())


async def visit(
    gateway: Gateway,
    at: datetime,
    *,
    method: VisitMethod = VisitMethod.HOME_VISIT,
    alert_id: int | None = None,
    details: dict[str, Any] | None = None,
    summary: str = "上门探访，老人精神好",
) -> int:
    async with gateway.db.begin() as conn:
        visit_id = await add_visit(
            conn,
            household_id="H001",
            method=method,
            visited_at=at,
            visitor="李敏",
            summary=summary,
            details=details or {},
            now=T0,
            by="admin",
            alert_id=alert_id,
        )
    assert visit_id is not None
    return visit_id


async def test_visits_newest_first_with_their_fields(client: httpx.AsyncClient, gateway: Gateway):
    alert_id = await smoke_alert(gateway)
    older = await visit(gateway, T0 - timedelta(days=3))
    filed = await visit(
        gateway,
        T0 + timedelta(minutes=20),
        method=VisitMethod.REMOTE_MONITORING,
        alert_id=alert_id,
        summary="烟雾报警：做饭冒烟，已处理",
        details={"event": "smoke_alarm", "notified": ["李敏", "王强"], "acknowledged_by": "李敏"},
    )
    # Entered after the alert's visit but made before it (a paper form typed in later).
    backfilled = await visit(gateway, T0 - timedelta(days=1), method=VisitMethod.PHONE)

    response = await client.get("/api/households/H001/visits", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [v["id"] for v in body] == [filed, backfilled, older]
    assert body[0]["form"] == dict.fromkeys(VisitForm.model_fields)  # nothing recorded on it
    assert {k: v for k, v in body[0].items() if k != "form"} == {
        "id": filed,
        "seq": 2,
        "entered_by": "admin",
        "method": "remote_monitoring",
        "visited_at": "2026-11-29T06:12:00Z",
        "alert_id": alert_id,
        "visitor": "李敏",
        "summary": "烟雾报警：做饭冒烟，已处理",
        "details": {
            "event": "smoke_alarm",
            "notified": ["李敏", "王强"],
            "acknowledged_by": "李敏",
        },
    }
    assert body[1]["method"] == "phone"
    assert body[1]["alert_id"] is None


async def test_pages_continue_after_the_last_visit_in_visit_order(
    client: httpx.AsyncClient, gateway: Gateway
):
    same_time = [await visit(gateway, T0) for _ in range(3)]
    earliest = await visit(gateway, T0 - timedelta(hours=1))
    latest = await visit(gateway, T0 + timedelta(hours=1))
    expected = [latest, *reversed(same_time), earliest]

    seen: list[int] = []
    before: int | None = None
    while True:
        params: dict[str, int] = {"limit": 2} | ({"before_id": before} if before else {})
        page = (await client.get("/api/households/H001/visits", params=params, headers=AUTH)).json()
        if not page:
            break
        seen += [v["id"] for v in page]
        before = page[-1]["id"]
    assert seen == expected


async def test_no_phone_numbers_in_visits(client: httpx.AsyncClient, gateway: Gateway):
    alert_id = await smoke_alert(gateway)
    await visit(
        gateway,
        T0 + timedelta(minutes=20),
        method=VisitMethod.REMOTE_MONITORING,
        alert_id=alert_id,
        details={
            "event": "smoke_alarm",
            "notified": [
                {"name": "李敏", "role": "visitor", "at": "2026-11-29T05:52:03Z"},
                {"name": "王强", "role": "relative", "at": "2026-11-29T05:52:04Z"},
            ],
            "acknowledged_by": "李敏",
            "acknowledged_at": "2026-11-29T05:52:40Z",
            "arrived_by": "李敏",
            "steps": 2,
        },
    )
    await visit(gateway, T0 + timedelta(days=1), method=VisitMethod.PHONE, details={})
    text = (await client.get("/api/households/H001/visits", headers=AUTH)).text
    assert PHONE_LIKE.search(text) is None, text


async def test_a_phone_number_that_got_into_a_visit_is_masked(
    client: httpx.AsyncClient, gateway: Gateway
):
    await visit(
        gateway,
        T0,
        summary="回电 13912345678",
        details={"notes": ["儿子电话 +86 139 1234 5678"]},
    )
    text = (await client.get("/api/households/H001/visits", headers=AUTH)).text
    assert PHONE_LIKE.search(text) is None, text
    assert "139****5678" in text


async def test_an_unknown_household_is_404(client: httpx.AsyncClient):
    response = await client.get("/api/households/nobody/visits", headers=AUTH)
    assert response.status_code == 404


async def test_a_household_without_visits_has_an_empty_list(client: httpx.AsyncClient):
    response = await client.get("/api/households/H001/visits", headers=AUTH)
    assert (response.status_code, response.json()) == (200, [])


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "before_id=0", "before_id=junk"])
async def test_bad_paging_is_422(client: httpx.AsyncClient, query: str):
    response = await client.get(f"/api/households/H001/visits?{query}", headers=AUTH)
    assert response.status_code == 422


async def test_visits_need_the_token(client: httpx.AsyncClient):
    response = await client.get("/api/households/H001/visits")
    assert response.status_code == 401
