"""Accounts, roles and the audit log: who may see and change what, over a real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.store.care_tables import accounts
from gateway.store.tables import alerts
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 5, 52, tzinfo=UTC)

# H001 (某镇某村) is visited by 李敏 (+8613900000000, from HOUSEHOLD); H002 in the same
# township by someone else; H003 in another township.
H002 = {
    "id": "H002",
    "elder": {"name": "王秀英"},
    "address": {"county": "某县", "township": "某镇", "village": "东村"},
    "visitors": [{"name": "赵磊", "phone": "+8613900000009"}],
}
H003 = {
    "id": "H003",
    "elder": {"name": "刘淑珍"},
    "address": {"county": "某县", "township": "另一镇", "village": "西村"},
    "visitors": [{"name": "李敏", "phone": "13900000000"}],  # the same visitor, written bare
}


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(T0)) as gw:
        for body in (HOUSEHOLD, H002, H003):
            await register(gw, body)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def new_account(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/accounts", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def bearer(account: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['token']}"}


async def open_alert(gateway: Gateway, household_id: str) -> int:
    async with gateway.db.begin() as conn:
        result = await conn.execute(
            sa.insert(alerts)
            .values(
                household_id=household_id,
                device_id="smoke-1",
                rule_id="smoke_alarm",
                severity="critical",
                status="open",
                summary="smoke detected",
                evidence={},
                opened_at=T0,
                last_seen_at=T0,
                updated_at=T0,
            )
            .returning(alerts.c.id)
        )
        return int(result.scalar_one())


async def test_a_new_account_gets_its_token_once_and_only_its_hash_is_kept(
    client: httpx.AsyncClient, gateway: Gateway
):
    visitor = await new_account(client, name="李敏", role="visitor", phone="139 0000 0000")
    assert visitor["token"].startswith("cg_")
    assert len(visitor["token"]) > 40
    assert visitor["phone"] == "+86139****0000"  # stored E.164, shown masked

    listed = (await client.get("/api/accounts", headers=ADMIN)).json()
    assert [a["name"] for a in listed] == ["李敏"]
    assert "token" not in listed[0]
    async with gateway.db.connect() as conn:
        stored = (await conn.execute(sa.select(accounts))).one()
    assert visitor["token"] not in str(stored._mapping.values())

    me = await client.get("/api/households", headers=bearer(visitor))
    assert me.status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "值班员", "role": "operator"}, "township"),
        ({"name": "李敏", "role": "visitor"}, "phone"),
        ({"name": "李敏", "role": "visitor", "phone": "99999"}, "phone"),
        ({"name": "某人", "role": "superuser"}, "role"),
    ],
)
async def test_an_account_missing_what_its_role_needs_is_refused(
    client: httpx.AsyncClient, body: dict[str, Any], field: str
):
    response = await client.post("/api/accounts", json=body, headers=ADMIN)
    assert response.status_code == 422
    assert field in response.text
    assert "99999" not in response.text  # a refused number is not echoed


async def test_a_revoked_token_stops_working_at_once(client: httpx.AsyncClient):
    operator = await new_account(client, name="值班员", role="operator", township="某镇")
    assert (await client.get("/api/alerts", headers=bearer(operator))).status_code == 200

    assert (
        await client.delete(f"/api/accounts/{operator['id']}", headers=ADMIN)
    ).status_code == 204

    assert (await client.get("/api/alerts", headers=bearer(operator))).status_code == 401
    assert (await client.delete("/api/accounts/999", headers=ADMIN)).status_code == 404


async def test_a_visitor_sees_only_the_elders_assigned_to_their_phone(
    client: httpx.AsyncClient, gateway: Gateway
):
    visitor = await new_account(client, name="李敏", role="visitor", phone="+8613900000000")
    mine, theirs, elsewhere = (
        await open_alert(gateway, "H001"),
        await open_alert(gateway, "H002"),
        await open_alert(gateway, "H003"),
    )
    auth = bearer(visitor)

    households = (await client.get("/api/households", headers=auth)).json()
    assert sorted(h["id"] for h in households) == ["H001", "H003"]  # bare 139... matches too
    listed = (await client.get("/api/alerts", headers=auth)).json()
    assert sorted(a["id"] for a in listed) == [mine, elsewhere]
    assert (
        await client.get("/api/alerts", params={"household": "H002"}, headers=auth)
    ).json() == []

    for method, path in [
        ("GET", "/api/households/H002"),
        ("GET", "/api/households/H002/visits"),
        ("GET", "/api/households/H002/rules"),
        ("GET", "/api/households/H002/escalation"),
        ("GET", "/api/households/H002/away"),
        ("GET", "/api/households/H002/activity"),
        ("GET", f"/api/alerts/{theirs}"),
        ("POST", f"/api/alerts/{theirs}/ack"),
        ("POST", f"/api/alerts/{theirs}/arrive"),
    ]:
        response = await client.request(method, path, headers=auth)
        assert response.status_code == 404, (method, path, response.text)
    resolve = await client.post(
        f"/api/alerts/{theirs}/resolve", json={"note": "试试"}, headers=auth
    )
    assert resolve.status_code == 404
    async with gateway.db.connect() as conn:
        status = await conn.scalar(sa.select(alerts.c.status).where(alerts.c.id == theirs))
    assert status == "open"

    ack = await client.post(f"/api/alerts/{mine}/ack", headers=auth)
    assert ack.status_code == 200
    assert ack.json()["acknowledged_by"] == "李敏"


async def test_an_operator_sees_their_township_and_nothing_else(
    client: httpx.AsyncClient, gateway: Gateway
):
    operator = await new_account(client, name="值班员", role="operator", township="某镇")
    auth = bearer(operator)
    await open_alert(gateway, "H003")

    households = (await client.get("/api/households", headers=auth)).json()
    assert sorted(h["id"] for h in households) == ["H001", "H002"]
    assert (await client.get("/api/households/H003", headers=auth)).status_code == 404
    assert (await client.get("/api/alerts", headers=auth)).json() == []
    report = await client.get("/api/reports/response", params={"month": "2026-11"}, headers=auth)
    assert report.status_code == 200
    assert report.json()["overall"]["alerts"] == 0  # H003's alert is another township's


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/accounts"),
        ("POST", "/api/accounts"),
        ("DELETE", "/api/accounts/1"),
        ("GET", "/api/audit"),
        ("GET", "/api/dead-letters"),
    ],
)
async def test_only_admins_manage_accounts_and_read_the_audit_log(
    client: httpx.AsyncClient, method: str, path: str
):
    operator = await new_account(client, name="值班员", role="operator", township="某镇")
    visitor = await new_account(client, name="李敏", role="visitor", phone="+8613900000000")
    for account in (operator, visitor):
        body = {"name": "x", "role": "admin"} if method == "POST" else None
        response = await client.request(method, path, json=body, headers=bearer(account))
        assert response.status_code == 403, (account["role"], response.text)


async def test_every_change_is_in_the_audit_log_with_who_did_it(
    client: httpx.AsyncClient, gateway: Gateway
):
    operator = await new_account(client, name="值班员", role="operator", township="某镇")
    alert_id = await open_alert(gateway, "H001")
    auth = bearer(operator)
    assert (await client.post(f"/api/alerts/{alert_id}/ack", headers=auth)).status_code == 200
    away = await client.post(
        "/api/households/H001/away",
        json={"until": "2026-12-05T00:00:00+08:00", "note": "住女儿家"},
        headers=auth,
    )
    assert away.status_code == 201
    await client.delete(f"/api/accounts/{operator['id']}", headers=ADMIN)

    entries = (await client.get("/api/audit", headers=ADMIN)).json()
    assert [(e["action"], e["actor"], e["household_id"]) for e in reversed(entries)] == [
        ("account.create", "admin", None),
        ("alert.ack", "值班员", "H001"),
        ("away.create", "值班员", "H001"),
        ("account.revoke", "admin", None),
    ]
    assert entries[1]["account_id"] == operator["id"]
    only_h001 = (
        await client.get("/api/audit", params={"household_id": "H001"}, headers=ADMIN)
    ).json()
    assert {e["action"] for e in only_h001} == {"alert.ack", "away.create"}
