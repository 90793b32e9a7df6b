"""Visit records on the official form, care services and referrals, over a real database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.alerts.visits import file_visit
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.store.alerts import get_alert
from gateway.store.tables import alerts
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
OTHER = {
    **HOUSEHOLD,
    "id": "H002",
    "elder": {"name": "赵秀英", "phone": "+8613800000001"},
    "address": {"county": "某县", "township": "某镇", "village": "东村", "detail": "1组"},
    "visitors": [{"name": "陈静", "phone": "+8613900000009"}],
}
FULL_FORM: dict[str, Any] = {
    "household_size_change": -1,
    "expression": "no_change",
    "mobility": "worse",
    "mood": "better",
    "personal_hygiene": "no_change",
    "home_hygiene": "worse",
    "indoor_environment": "no_change",
    "illness": "serious",
    "illness_name": "高血压",
    "gas": "safe",
    "water_heating": "fairly_safe",
    "electricity": "unsafe",
    "fire": "safe",
    "health": "fair",
    "health_note": "血压偏高",
    "living_security": "basic",
    "living_security_note": "低保",
    "living_environment_note": "屋顶漏雨",
    "hygiene_note": "厨房较脏",
    "children_visit": "occasionally",
    "children_call": "regularly",
    "family_care_note": "儿子每周来电",
    "service_needs": "助餐、维修屋顶",
    "care_suggestions": "联系村委会维修",
    "special_circumstances": "无",
    "elder_confirmed": True,
    "elder_signature": "张桂兰",
}


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(NOW)) as gw:
        await register(gw)
        await register(gw, OTHER)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def token_for(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, str]:
    response = await client.post("/api/accounts", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


async def post_visit(
    client: httpx.AsyncClient, household: str = "H001", headers: dict[str, str] = ADMIN, **body: Any
) -> httpx.Response:
    payload = {"method": "home_visit", "visited_at": "2026-11-28T09:30:00+08:00", **body}
    return await client.post(f"/api/households/{household}/visits", json=payload, headers=headers)


async def test_a_visit_with_every_finding_is_numbered_and_read_back(client: httpx.AsyncClient):
    response = await post_visit(client, summary="上门探访", visitor="李敏", form=FULL_FORM)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["seq"] == 1
    assert created["visited_at"] == "2026-11-28T01:30:00Z"
    assert created["entered_by"] == "admin"
    assert {k: v for k, v in created["form"].items() if v is not None} == FULL_FORM

    listed = (await client.get("/api/households/H001/visits", headers=ADMIN)).json()
    assert [v["id"] for v in listed] == [created["id"]]
    assert listed[0]["form"]["electricity"] == "unsafe"
    one = await client.get(f"/api/households/H001/visits/{created['id']}", headers=ADMIN)
    assert one.json() == created

    audit = (await client.get("/api/audit?action=visit.create", headers=ADMIN)).json()
    assert [(e["household_id"], e["target"]) for e in audit] == [("H001", f"visit {created['id']}")]


async def test_a_phone_call_records_only_what_it_can_judge(client: httpx.AsyncClient):
    response = await post_visit(
        client, method="phone", form={"mood": "no_change", "children_call": "regularly"}
    )
    assert response.status_code == 201, response.text
    form = response.json()["form"]
    assert (form["mood"], form["children_call"], form["home_hygiene"]) == (
        "no_change",
        "regularly",
        None,
    )
    assert response.json()["visitor"] == "admin"  # the caller, when no visitor is named


async def test_numbers_count_the_visits_filed_from_alerts(
    client: httpx.AsyncClient, gateway: Gateway
):
    async with gateway.db.begin() as conn:
        alert_id = (
            await conn.execute(
                sa.insert(alerts)
                .values(
                    household_id="H001",
                    device_id="smoke-1",
                    rule_id="smoke_alarm",
                    severity="critical",
                    status="resolved",
                    summary="smoke detected",
                    evidence={},
                    opened_at=NOW - timedelta(hours=2),
                    last_seen_at=NOW - timedelta(hours=2),
                    acknowledged_at=NOW - timedelta(hours=2) + timedelta(seconds=40),
                    acknowledged_by="李敏",
                    resolved_at=NOW - timedelta(hours=1),
                    resolved_by="李敏",
                    resolution_note="做饭冒烟",
                    updated_at=NOW,
                )
                .returning(alerts.c.id)
            )
        ).scalar_one()
        alert = await get_alert(conn, alert_id)
        assert alert is not None
        await file_visit(conn, alert, "zh", NOW)

    second = await post_visit(client)
    assert second.json()["seq"] == 2
    filed = (await client.get("/api/households/H001/visits", headers=ADMIN)).json()
    from_alert = next(v for v in filed if v["alert_id"] == alert_id)
    assert from_alert["seq"] == 1
    assert from_alert["method"] == "remote_monitoring"
    assert from_alert["visitor"] == "李敏"
    assert from_alert["entered_by"] == "system"
    assert "做饭冒烟" in from_alert["form"]["special_circumstances"]
    # Each household counts its own visits.
    assert (await post_visit(client, "H002")).json()["seq"] == 1


async def test_visits_filed_at_once_get_distinct_numbers(client: httpx.AsyncClient):
    answers = await asyncio.gather(*(post_visit(client) for _ in range(4)))
    assert [a.status_code for a in answers] == [201] * 4, [a.text for a in answers]
    assert sorted(a.json()["seq"] for a in answers) == [1, 2, 3, 4]


async def test_a_visit_in_the_future_is_refused_naming_the_field(client: httpx.AsyncClient):
    response = await post_visit(client, visited_at="2026-11-30T09:00:00+08:00")
    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["detail"]] == [["body", "visited_at"]]
    assert "2026-11-30" not in response.text
    assert (await client.get("/api/households/H001/visits", headers=ADMIN)).json() == []


@pytest.mark.parametrize(
    ("form", "loc"),
    [
        ({"gas": "explosive"}, ["body", "form", "gas"]),
        ({"smell": "smoky"}, ["body", "form", "smell"]),
        ({"illness": "serious"}, ["body", "form"]),
        ({"household_size_change": 99}, ["body", "form", "household_size_change"]),
        ({"service_needs": "x" * 201}, ["body", "form", "service_needs"]),
    ],
)
async def test_a_finding_the_form_does_not_know_is_refused(
    client: httpx.AsyncClient, form: dict[str, Any], loc: list[str]
):
    response = await post_visit(client, form=form)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == loc
    assert "explosive" not in response.text
    assert "smoky" not in response.text


@pytest.mark.parametrize(
    "body",
    [
        {"method": "telepathy", "visited_at": "2026-11-28T09:30:00+08:00"},
        {"method": "phone"},
        {"method": "phone", "visited_at": "2026-11-28T09:30:00"},  # no offset: which zone?
    ],
)
async def test_method_and_time_are_required(client: httpx.AsyncClient, body: dict[str, Any]):
    response = await client.post("/api/households/H001/visits", json=body, headers=ADMIN)
    assert response.status_code == 422


async def test_care_services_are_numbered_with_the_elders_satisfaction(
    client: httpx.AsyncClient,
):
    for service, satisfaction in (("助餐", "very_satisfied"), ("理发", "fair")):
        response = await client.post(
            "/api/households/H001/services",
            json={
                "served_on": "2026-11-20",
                "service": service,
                "provider": "幸福食堂",
                "satisfaction": satisfaction,
            },
            headers=ADMIN,
        )
        assert response.status_code == 201, response.text
    listed = (await client.get("/api/households/H001/services", headers=ADMIN)).json()
    assert [(s["seq"], s["service"], s["satisfaction"]) for s in listed] == [
        (1, "助餐", "very_satisfied"),
        (2, "理发", "fair"),
    ]
    audit = (await client.get("/api/audit?action=service.create", headers=ADMIN)).json()
    assert len(audit) == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"served_on": "2026-11-30"}, "served_on"),  # tomorrow in Asia/Shanghai
        ({"satisfaction": "delighted"}, "satisfaction"),
        ({"service": ""}, "service"),
    ],
)
async def test_a_bad_care_service_is_refused_naming_the_field(
    client: httpx.AsyncClient, change: dict[str, str], field: str
):
    body = {
        "served_on": "2026-11-20",
        "service": "助餐",
        "provider": "食堂",
        "satisfaction": "fair",
    }
    response = await client.post(
        "/api/households/H001/services", json={**body, **change}, headers=ADMIN
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", field]


async def test_a_need_is_referred_and_followed_up_until_done(client: httpx.AsyncClient):
    visit_id = (await post_visit(client, form=FULL_FORM)).json()["id"]
    response = await client.post(
        "/api/households/H001/referrals",
        json={
            "need": "屋顶漏雨需维修",
            "referred_to": "村委会",
            "due_on": "2026-12-05",
            "visit_id": visit_id,
        },
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    referral = response.json()
    assert (referral["status"], referral["visit_id"], referral["history"]) == ("open", visit_id, [])

    open_list = (await client.get("/api/referrals?status=open", headers=ADMIN)).json()
    assert [r["id"] for r in open_list] == [referral["id"]]

    for status, note in (("in_progress", "已联系施工队"), ("done", "屋顶已修好")):
        followed = await client.post(
            f"/api/referrals/{referral['id']}/follow-ups",
            json={"status": status, "note": note},
            headers=ADMIN,
        )
        assert followed.status_code == 200, followed.text
    done = followed.json()
    assert done["status"] == "done"
    assert [(h["status"], h["note"], h["by"]) for h in done["history"]] == [
        ("in_progress", "已联系施工队", "admin"),
        ("done", "屋顶已修好", "admin"),
    ]
    assert (await client.get("/api/referrals?status=open", headers=ADMIN)).json() == []
    household = (await client.get("/api/households/H001/referrals", headers=ADMIN)).json()
    assert [r["status"] for r in household] == ["done"]
    actions = [
        e["action"]
        for e in (await client.get("/api/audit?household_id=H001", headers=ADMIN)).json()
    ]
    assert actions.count("referral.follow_up") == 2
    assert "referral.create" in actions


async def test_a_referral_names_only_a_visit_of_its_household(client: httpx.AsyncClient):
    other_visit = (await post_visit(client, "H002")).json()["id"]
    response = await client.post(
        "/api/households/H001/referrals",
        json={"need": "助餐", "referred_to": "食堂", "visit_id": other_visit},
        headers=ADMIN,
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "visit_id"]


async def test_a_follow_up_cannot_reopen(client: httpx.AsyncClient):
    referral = (
        await client.post(
            "/api/households/H001/referrals",
            json={"need": "助餐", "referred_to": "食堂"},
            headers=ADMIN,
        )
    ).json()
    response = await client.post(
        f"/api/referrals/{referral['id']}/follow-ups", json={"status": "open"}, headers=ADMIN
    )
    assert response.status_code == 422


async def test_a_visitor_files_for_their_elder_and_sees_nobody_elses(client: httpx.AsyncClient):
    # The other household's records, made by an admin.
    other_visit = (await post_visit(client, "H002")).json()["id"]
    other_referral = (
        await client.post(
            "/api/households/H002/referrals",
            json={"need": "助餐", "referred_to": "食堂"},
            headers=ADMIN,
        )
    ).json()["id"]
    visitor = await token_for(client, {"name": "李敏", "role": "visitor", "phone": "13900000000"})

    mine = await post_visit(client, headers=visitor, form={"mood": "better"})
    assert mine.status_code == 201, mine.text
    assert (mine.json()["entered_by"], mine.json()["visitor"]) == ("李敏", "李敏")
    own = await client.post(
        "/api/households/H001/referrals",
        json={"need": "维修", "referred_to": "村委会", "visit_id": mine.json()["id"]},
        headers=visitor,
    )
    assert own.status_code == 201

    service = {
        "served_on": "2026-11-20",
        "service": "助餐",
        "provider": "食堂",
        "satisfaction": "fair",
    }
    refused = [
        await client.get("/api/households/H002/visits", headers=visitor),
        await client.get(f"/api/households/H002/visits/{other_visit}", headers=visitor),
        await client.get(f"/api/households/H001/visits/{other_visit}", headers=visitor),
        await post_visit(client, "H002", headers=visitor),
        await client.get("/api/households/H002/services", headers=visitor),
        await client.post("/api/households/H002/services", json=service, headers=visitor),
        await client.get("/api/households/H002/referrals", headers=visitor),
        await client.post(
            "/api/households/H002/referrals",
            json={"need": "助餐", "referred_to": "食堂"},
            headers=visitor,
        ),
        await client.post(
            f"/api/referrals/{other_referral}/follow-ups", json={"status": "done"}, headers=visitor
        ),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    listed = (await client.get("/api/referrals", headers=visitor)).json()
    assert [r["household_id"] for r in listed] == ["H001"]
    # Nothing of the refused requests was filed.
    other = (await client.get("/api/households/H002/visits", headers=ADMIN)).json()
    assert [v["id"] for v in other] == [other_visit]


async def test_an_operator_sees_the_referrals_of_their_township_only(client: httpx.AsyncClient):
    for household in ("H001", "H002"):
        await client.post(
            f"/api/households/{household}/referrals",
            json={"need": "助餐", "referred_to": "食堂"},
            headers=ADMIN,
        )
    elsewhere = await token_for(client, {"name": "周", "role": "operator", "township": "别镇"})
    assert (await client.get("/api/referrals?status=open", headers=elsewhere)).json() == []
    here = await token_for(client, {"name": "吴", "role": "operator", "township": "某镇"})
    assert len((await client.get("/api/referrals?status=open", headers=here)).json()) == 2
