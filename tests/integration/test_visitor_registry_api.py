"""The visitors' registry (/api/visitors) and assigning registered visitors to an elder."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from gateway.app import Gateway
from gateway.clock import ManualClock
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)

SUN = {
    "name": "孙丽",
    "phone": "135 1111 2222",
    "org_type": "village_committee",
    "organisation": "某村村委会",
    "villages": [{"county": "某县", "township": "某镇", "village": "某村"}],
    "language": "zh",
}
WU = {
    "name": "吴刚",
    "phone": "13633334444",
    "org_type": "volunteer",
    "villages": [{"township": "别镇", "village": "北村"}],
}


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        await register(gw)
        await register(
            gw,
            {
                **HOUSEHOLD,
                "id": "H200",
                "address": {"township": "别镇", "village": "北村"},
                "visitors": [{"name": "吴刚", "phone": "13633334444"}],
            },
        )
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def token_for(client: httpx.AsyncClient, **account: str) -> dict[str, str]:
    response = await client.post("/api/accounts", json=account, headers=AUTH)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def create(client: httpx.AsyncClient, body: dict[str, Any]) -> int:
    response = await client.post("/api/visitors", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    visitor_id: int = response.json()["id"]
    return visitor_id


async def test_register_a_visitor_and_assign_them_to_an_elder(client: httpx.AsyncClient):
    sun = await create(client, SUN)
    listed = (await client.get("/api/visitors", headers=AUTH)).json()
    assert [(v["name"], v["phone"]) for v in listed] == [("孙丽", "+86135****2222")]
    again = await client.post(
        "/api/visitors", json={**SUN, "phone": "+8613511112222"}, headers=AUTH
    )
    assert again.status_code == 409

    sun_account = await token_for(client, name="孙丽", role="visitor", phone="13511112222")
    assert (await client.get("/api/households/H001", headers=sun_account)).status_code == 404
    assigned = await client.put(
        "/api/households/H001/visitors", json={"visitor_ids": [sun]}, headers=AUTH
    )
    assert assigned.status_code == 200, assigned.text
    page = (await client.get("/api/households/H001", headers=AUTH)).json()
    assert [(v["name"], v["phone"]) for v in page["visitors"]] == [("孙丽", "+8613511112222")]
    # The assignment is what scope reads: the visitor now sees the elder.
    assert (await client.get("/api/households/H001", headers=sun_account)).status_code == 200
    visitor_page = (await client.get(f"/api/visitors/{sun}", headers=AUTH)).json()
    assert visitor_page["phone"] == "+8613511112222"
    assert visitor_page["households"] == [
        {"household_id": "H001", "elder_name": "张桂兰", "village": "某村"}
    ]
    audit = await client.get(
        "/api/audit", params={"action": "household.assign_visitors"}, headers=AUTH
    )
    assert [e["details"] for e in audit.json()] == [{"visitor_ids": [sun]}]

    unknown = await client.put(
        "/api/households/H001/visitors", json={"visitor_ids": [sun, 999]}, headers=AUTH
    )
    assert unknown.status_code == 422
    assert [e["loc"] for e in unknown.json()["detail"]] == [["body", "visitor_ids", 1]]


async def test_a_new_phone_follows_the_visitor_to_their_elders(client: httpx.AsyncClient):
    sun = await create(client, SUN)
    await client.put("/api/households/H001/visitors", json={"visitor_ids": [sun]}, headers=AUTH)
    old_account = await token_for(client, name="孙丽", role="visitor", phone="13511112222")
    changed = await client.put(
        f"/api/visitors/{sun}", json={**SUN, "phone": "13599998888"}, headers=AUTH
    )
    assert changed.status_code == 200, changed.text
    page = (await client.get("/api/households/H001", headers=AUTH)).json()
    assert [v["phone"] for v in page["visitors"]] == ["+8613599998888"]
    assert (await client.get("/api/households/H001", headers=old_account)).status_code == 404

    assert (await client.delete(f"/api/visitors/{sun}", headers=AUTH)).status_code == 409
    await client.put("/api/households/H001/visitors", json={"visitor_ids": []}, headers=AUTH)
    assert (await client.delete(f"/api/visitors/{sun}", headers=AUTH)).status_code == 204
    assert (await client.get(f"/api/visitors/{sun}", headers=AUTH)).status_code == 404


async def test_an_operator_manages_the_visitors_of_their_township(client: httpx.AsyncClient):
    sun = await create(client, SUN)
    wu = await create(client, WU)
    operator = await token_for(client, name="周", role="operator", township="某镇")
    listed = (await client.get("/api/visitors", headers=operator)).json()
    assert [v["id"] for v in listed] == [sun]
    assert (await client.get(f"/api/visitors/{wu}", headers=operator)).status_code == 404
    assert (await client.put(f"/api/visitors/{wu}", json=WU, headers=operator)).status_code == 403
    outside = await client.post(
        "/api/visitors", json={**WU, "phone": "13677776666"}, headers=operator
    )
    assert outside.status_code == 403
    # Another township's visitor cannot be assigned; another township's elder is not there.
    refused = await client.put(
        "/api/households/H001/visitors", json={"visitor_ids": [wu]}, headers=operator
    )
    assert refused.status_code == 422
    elsewhere = await client.put(
        "/api/households/H200/visitors", json={"visitor_ids": [sun]}, headers=operator
    )
    assert elsewhere.status_code == 404


async def test_a_visitor_may_not_touch_the_registry(client: httpx.AsyncClient):
    sun = await create(client, SUN)
    visitor = await token_for(client, name="李敏", role="visitor", phone="13900000000")
    assert (await client.get("/api/visitors", headers=visitor)).status_code == 403
    assert (await client.get(f"/api/visitors/{sun}", headers=visitor)).status_code == 403
    assert (await client.post("/api/visitors", json=WU, headers=visitor)).status_code == 403
    body = {"visitor_ids": [sun]}
    own = await client.put("/api/households/H001/visitors", json=body, headers=visitor)
    assert own.status_code == 403
    other = await client.put("/api/households/H200/visitors", json=body, headers=visitor)
    assert other.status_code == 404
