"""The registry on /api/households: the form's fields, validation, changes, scope and masking."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from stdnum.cn import ric

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.store.visits import VisitMethod, add_visit
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


def citizen_id(first17: str) -> str:
    """A valid 18-character ID number: the 17 digits and their check digit."""
    return first17 + ric.calc_check_digit(first17 + "0")


ELDER_ID = "11010519491231002X"
MEMBER_ID = citizen_id("11010519750101123")
WRONG_CHECK_DIGIT = "110105194912310021"

REGISTRY: dict[str, Any] = {
    "id": "H100",
    "elder": {"name": "赵秀英", "phone": "139 1234 5678", "citizen_id": ELDER_ID, "sex": "female"},
    "address": {"county": "某县", "township": "某镇", "village": "东村", "detail": "1组2号"},
    "visitors": [{"name": "李敏", "phone": "+8613900000000"}],
    "relatives": [
        {"name": "王强", "phone": "+8613700000000", "relation": "son"},
        {"name": "王丽", "phone": "010-12345678", "relation": "daughter"},
    ],
    "categories": {
        "living_alone": True,
        "disabled": True,
        "disability_certificate": "11010519491231002X42",
        "at_registered_residence": False,
    },
    "members": [
        {
            "name": "王强",
            "sex": "male",
            "citizen_id": MEMBER_ID,
            "relation": "son",
            "health": "健康",
            "subsistence_support": False,
        }
    ],
    "living": {"safe_water": True, "monthly_income": 800, "monthly_benefits": 1200.5},
    "support": {
        "unit_type": "village_committee",
        "unit": "东村村委会",
        "responsible": "陈主任",
        "measures": "每周电话问候",
    },
    "risk": "high",
    "registered_on": "2025-03-01",
}


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        await register(gw)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def token_for(client: httpx.AsyncClient, **account: str) -> dict[str, str]:
    response = await client.post("/api/accounts", json=account, headers=AUTH)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def audit_entries(client: httpx.AsyncClient, action: str) -> list[dict[str, Any]]:
    response = await client.get("/api/audit", params={"action": action}, headers=AUTH)
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()
    return entries


def fields(body: dict[str, Any]) -> dict[str, Any]:
    """A POST body as a PUT body (no id)."""
    return {k: v for k, v in body.items() if k != "id"}


async def test_the_old_post_body_still_registers_a_household(client: httpx.AsyncClient):
    body = {**HOUSEHOLD, "id": "H002"}
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert response.status_code == 201, response.text
    page = (await client.get("/api/households/H002", headers=AUTH)).json()
    assert page["elder_phone"] == "+8613800000000"
    assert page["risk"] == "normal"
    assert page["categories"]["disabled"] is None
    assert page["members"] == []


async def test_every_field_of_the_form_is_kept_and_shown_whole_to_staff(
    client: httpx.AsyncClient,
):
    response = await client.post("/api/households", json=REGISTRY, headers=AUTH)
    assert response.status_code == 201, response.text
    # The creation answer is not the elder's page: the ID number is masked there.
    assert response.json()["citizen_id"] == "110105***********X"
    page = (await client.get("/api/households/H100", headers=AUTH)).json()
    assert page["citizen_id"] == ELDER_ID
    assert page["elder_phone"] == "+8613912345678"  # stored in E.164
    assert page["relatives"][1]["phone"] == "+861012345678"
    assert page["sex"] == "female"
    assert page["categories"]["disability_certificate"] == "11010519491231002X42"
    assert page["members"][0]["citizen_id"] == MEMBER_ID
    assert page["living"]["monthly_benefits"] == 1200.5
    assert page["support"]["unit_type"] == "village_committee"
    assert page["risk"] == "high"
    assert page["registered_on"] == "2025-03-01"
    views = await audit_entries(client, "household.view_citizen_id")
    assert [(e["actor"], e["household_id"]) for e in views] == [("admin", "H100")]


async def test_a_wrong_check_digit_is_refused_naming_the_field_not_the_value(
    client: httpx.AsyncClient,
):
    body = copy.deepcopy(REGISTRY)
    body["elder"]["citizen_id"] = WRONG_CHECK_DIGIT
    body["members"][0]["citizen_id"] = "1101051975"
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {tuple(e["loc"]): e["msg"] for e in errors} == {
        ("body", "elder", "citizen_id"): "Value error, the check digit (the 18th character) "
        "is wrong",
        ("body", "members", 0, "citizen_id"): "Value error, a citizen ID number has 18 characters",
    }
    assert WRONG_CHECK_DIGIT not in response.text
    assert "1101051975" not in response.text
    assert (await client.get("/api/households/H100", headers=AUTH)).status_code == 404


async def test_dates_in_the_future_are_refused(client: httpx.AsyncClient):
    unborn = citizen_id("11010520270101001")  # born 2027-01-01: after today (2026-12-01)
    body = copy.deepcopy(REGISTRY)
    body["registered_on"] = "2026-12-02"
    body["members"][0]["citizen_id"] = unborn
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "registered_on"],
            "msg": "must not be in the future",
            "type": "date_in_future",
        },
        {
            "loc": ["body", "members", 0, "citizen_id"],
            "msg": "must not be in the future",
            "type": "date_in_future",
        },
    ]
    assert unborn not in response.text
    body = copy.deepcopy(REGISTRY)
    body["left_on"] = "2024-01-01"  # before registered_on
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "left_on"]]


@pytest.mark.parametrize(
    ("where", "phone"),
    [
        (("elder",), "99999"),
        (("elder",), "call 13912345678"),
        (("relatives", 0), "1391111222"),  # a digit short
        (("visitors", 0), "+86 100 0000 0000"),
    ],
)
async def test_an_invalid_mainland_phone_is_refused(
    client: httpx.AsyncClient, where: tuple[Any, ...], phone: str
):
    body = copy.deepcopy(REGISTRY)
    target: Any = body
    for part in where:
        target = target[part]
    target["phone"] = phone
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", *where, "phone"]]
    assert phone not in response.text


async def test_disabled_needs_a_certificate_number(client: httpx.AsyncClient):
    body = copy.deepcopy(REGISTRY)
    del body["categories"]["disability_certificate"]
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [
        ["body", "categories", "disability_certificate"]
    ]


async def test_put_replaces_the_registry_and_audits_the_names_of_what_changed(
    client: httpx.AsyncClient, gateway: Gateway
):
    assert (await client.post("/api/households", json=REGISTRY, headers=AUTH)).status_code == 201
    body = fields(copy.deepcopy(REGISTRY))
    body["elder"]["phone"] = "13987654321"
    body["relatives"] = body["relatives"][1:]
    body["left_on"] = "2026-11-30"
    body["left_reason"] = "moved to her daughter's"
    response = await client.put("/api/households/H100", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["left_on"] == "2026-11-30"
    assert [r["name"] for r in response.json()["relatives"]] == ["王丽"]
    [entry] = await audit_entries(client, "household.update")
    assert entry["household_id"] == "H100"
    assert entry["details"] == {"fields": ["elder.phone", "left_on", "left_reason", "relatives"]}
    active = await client.get("/api/households", params={"active": "true"}, headers=AUTH)
    assert [h["id"] for h in active.json()] == ["H001"]
    left = await client.get("/api/households", params={"active": "false"}, headers=AUTH)
    assert [h["id"] for h in left.json()] == ["H100"]


async def test_delete_erases_a_mistake_but_not_a_household_with_a_history(
    client: httpx.AsyncClient, gateway: Gateway
):
    assert (await client.post("/api/households", json=REGISTRY, headers=AUTH)).status_code == 201
    operator = await token_for(client, name="周", role="operator", township="某镇")
    assert (await client.delete("/api/households/H100", headers=operator)).status_code == 403
    assert (await client.delete("/api/households/H100", headers=AUTH)).status_code == 204
    assert (await client.get("/api/households/H100", headers=AUTH)).status_code == 404
    [entry] = await audit_entries(client, "household.delete")
    assert entry["household_id"] == "H100"
    async with gateway.db.begin() as conn:
        await add_visit(
            conn,
            household_id="H001",
            method=VisitMethod.HOME_VISIT,
            visited_at=NOW,
            visitor="李敏",
            summary="上门探访",
            details={},
            now=NOW,
            by="test",
        )
    refused = await client.delete("/api/households/H001", headers=AUTH)
    assert refused.status_code == 409
    assert "left_on" in refused.json()["detail"]


async def test_lists_mask_numbers_and_filter(client: httpx.AsyncClient):
    assert (await client.post("/api/households", json=REGISTRY, headers=AUTH)).status_code == 201
    listed = (await client.get("/api/households", headers=AUTH)).json()
    h100 = next(h for h in listed if h["id"] == "H100")
    assert h100["citizen_id"] == "110105***********X"
    assert h100["elder_phone"] == "+86139****5678"
    assert ELDER_ID not in str(listed)

    async def ids(**params: str) -> list[str]:
        found = await client.get("/api/households", params=params, headers=AUTH)
        return [h["id"] for h in found.json()]

    assert await ids(village="东村") == ["H100"]
    assert await ids(county="某县", township="某镇") == ["H001", "H100"]
    assert await ids(q="秀") == ["H100"]
    assert await ids(q="%") == []
    assert await ids(village="西村") == []


async def test_an_operator_works_within_their_township(client: httpx.AsyncClient):
    assert (await client.post("/api/households", json=REGISTRY, headers=AUTH)).status_code == 201
    elsewhere = {**HOUSEHOLD, "id": "H200", "address": {"township": "别镇", "village": "北村"}}
    assert (await client.post("/api/households", json=elsewhere, headers=AUTH)).status_code == 201
    operator = await token_for(client, name="周", role="operator", township="某镇")

    listed = (await client.get("/api/households", headers=operator)).json()
    assert [h["id"] for h in listed] == ["H001", "H100"]
    assert (await client.get("/api/households/H200", headers=operator)).status_code == 404
    page = (await client.get("/api/households/H100", headers=operator)).json()
    assert page["citizen_id"] == ELDER_ID
    assert page["members"][0]["citizen_id"] == MEMBER_ID
    [view] = await audit_entries(client, "household.view_citizen_id")
    assert (view["actor"], view["actor_role"], view["household_id"]) == ("周", "operator", "H100")

    outside = {**REGISTRY, "id": "H300", "address": {"township": "别镇"}}
    assert (await client.post("/api/households", json=outside, headers=operator)).status_code == 403
    moved = fields(copy.deepcopy(REGISTRY))
    moved["address"]["township"] = "别镇"
    response = await client.put("/api/households/H100", json=moved, headers=operator)
    assert response.status_code == 403
    inside = {**HOUSEHOLD, "id": "H301"}
    assert (await client.post("/api/households", json=inside, headers=operator)).status_code == 201


async def test_a_visitor_sees_only_their_elders_masked_and_changes_nothing(
    client: httpx.AsyncClient,
):
    assert (await client.post("/api/households", json=REGISTRY, headers=AUTH)).status_code == 201
    other = copy.deepcopy(REGISTRY) | {
        "id": "H101",
        "visitors": [{"name": "孙", "phone": "13511112222"}],
    }
    other["elder"] = {"name": "钱", "citizen_id": citizen_id("11010519500101002")}
    assert (await client.post("/api/households", json=other, headers=AUTH)).status_code == 201
    visitor = await token_for(client, name="李敏", role="visitor", phone="13900000000")

    listed = (await client.get("/api/households", headers=visitor)).json()
    assert [h["id"] for h in listed] == ["H001", "H100"]
    page = (await client.get("/api/households/H100", headers=visitor)).json()
    assert page["citizen_id"] == "110105***********X"
    assert page["members"][0]["citizen_id"] != MEMBER_ID
    assert page["elder_phone"] == "+86139****5678"
    assert await audit_entries(client, "household.view_citizen_id") == []

    body = fields(copy.deepcopy(REGISTRY))
    device = {"kind": "smoke_detector"}
    for method, path, json in [
        ("GET", "/api/households/H101", None),
        ("PUT", "/api/households/H101", body),
        ("DELETE", "/api/households/H101", None),
        ("PUT", "/api/households/H101/devices/smoke-1", device),
    ]:
        response = await client.request(method, path, json=json, headers=visitor)
        assert response.status_code == 404, (method, path)
    for method, path, json in [
        ("PUT", "/api/households/H100", body),
        ("DELETE", "/api/households/H100", None),
        ("PUT", "/api/households/H100/devices/smoke-1", device),
        ("POST", "/api/households", {**REGISTRY, "id": "H102"}),
    ]:
        response = await client.request(method, path, json=json, headers=visitor)
        assert response.status_code == 403, (method, path)
