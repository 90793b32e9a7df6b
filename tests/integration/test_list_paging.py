"""List routes answer a page at a time: following `Link: rel="next"` from the first page gives
the whole list once, in order; `X-Total-Count` counts what the filters and the caller's scope
keep. On SQLite and PostgreSQL, over HTTP in process."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa

from gateway.api.app import create_api
from gateway.api.paging import TOTAL_HEADER
from gateway.app import Gateway
from gateway.care import audit
from gateway.care.accounts import create_account
from gateway.care.services import add_referral, add_service
from gateway.care.visit_form import ReferralIn, Satisfaction, ServiceIn
from gateway.care.visitors import Village, VisitorIn, create_visitor
from gateway.care.warnings import WarningSpec, issue_warning
from gateway.clock import ManualClock
from gateway.store.dead_letters import DeadLetter, insert_dead_letters
from gateway.store.rule_settings import add_away
from gateway.store.tables import alerts
from gateway.store.visits import VisitMethod, add_visit
from tests.integration.harness import api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 5, 52, tzinfo=UTC)
EACH = 7
"""Rows of every kind made for H001: pages of 3 make two full pages and a short one."""
LI_MIN = "+8613900000000"
"""The visitor of H001..H003."""


def household(n: int, township: str, visitor_phone: str) -> dict[str, Any]:
    return {
        "id": f"H{n:03d}",
        "elder": {"name": f"老人{n}", "phone": f"+86138000{n:05d}"},
        "address": {"county": "某县", "township": township, "village": "某村", "detail": f"{n}号"},
        "visitors": [{"name": "探访员", "phone": visitor_phone}],
        "relatives": [],
    }


async def seed(gateway: Gateway) -> None:
    """Households in two townships, and EACH of every listed kind of row, most of H001's."""
    for n in range(1, 8):
        await register(gateway, household(n, "某镇", LI_MIN if n <= 3 else "+8613900000001"))
    for n in range(101, 105):
        await register(gateway, household(n, "别镇", "+8613900000002"))
    zone = ZoneInfo("Asia/Shanghai")
    admin = audit.Actor("admin", "admin")
    async with gateway.db.begin() as conn:
        for i in range(EACH):
            at = T0 - timedelta(days=i)
            # Two visits at the same time: the order falls back on the id, never ties.
            visited = T0 - timedelta(days=i // 2)
            await add_visit(
                conn,
                household_id="H001",
                method=VisitMethod.PHONE,
                visited_at=visited,
                visitor="探访员",
                summary=f"第{i}次",
                details={},
                now=T0,
                by="admin",
            )
            await add_service(
                conn,
                "H001",
                ServiceIn(
                    served_on=date(2026, 11, 1 + i),
                    service="助餐",
                    provider="村委会",
                    satisfaction=Satisfaction.SATISFIED,
                ),
                now=T0,
                by="admin",
            )
            for household_id in ("H001", "H101"):
                await add_referral(
                    conn,
                    household_id,
                    ReferralIn(need=f"需要{i}", referred_to="村委会", due_on=date(2026, 12, 1 + i)),
                    now=T0,
                    by="admin",
                )
            await add_away(
                conn,
                "H001",
                T0 + timedelta(days=2 * i + 1),
                T0 + timedelta(days=2 * i + 2),
                note="",
                by="admin",
                now=T0,
            )
            for household_id in ("H001", "H101"):
                await conn.execute(
                    sa.insert(alerts).values(
                        household_id=household_id,
                        device_id=f"smoke-{i}",
                        rule_id="smoke_alarm",
                        severity="critical",
                        status="open" if i % 2 else "resolved",
                        summary="smoke detected",
                        evidence={},
                        opened_at=at,
                        last_seen_at=at,
                        updated_at=at,
                    )
                )
            await insert_dead_letters(
                conn, [DeadLetter(f"homes/H001/x-{i}/telemetry", b"{", "bad_json", "bad", at)]
            )
            await audit.record(conn, admin, "test.paging", now=at, household_id="H001")
            await create_account(
                conn,
                name=f"值班员{i}",
                role="operator",
                township="某镇",
                phone=None,
                by="admin",
                now=at,
            )
            await issue_warning(
                conn,
                WarningSpec(f"台风预警{i}", "请检查门窗", "typhoon", "orange", "某镇"),
                by="admin",
                now=at,
                zone=zone,
            )
            villages = [Village(township="某镇" if i < 5 else "别镇", village="某村")]
            body = VisitorIn(
                name=f"志愿者{i}",
                phone=f"1367777{i:04d}",
                org_type="volunteer",
                villages=villages,
            )
            await create_visitor(conn, body, at)


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(T0)) as gw:
        await seed(gw)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def token_for(client: httpx.AsyncClient, **account: str) -> dict[str, str]:
    created = await client.post("/api/accounts", json=account, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}"}


def next_link(response: httpx.Response) -> str | None:
    """The relative URL of `Link: <...>; rel="next"`, when there is one."""
    link = response.headers.get("link")
    if link is None:
        return None
    found = re.fullmatch(r'<([^>]+)>; rel="next"', link)
    assert found, link
    return found.group(1)


async def follow(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[list[dict[str, Any]], list[httpx.Response]]:
    """Every item from `url` on, following the next links; and the responses."""
    items: list[dict[str, Any]] = []
    responses = []
    next_url: str | None = url
    while next_url is not None:
        assert len(responses) < 100, "the next links do not end"
        response = await client.get(next_url, headers=headers)
        assert response.status_code == 200, (next_url, response.text)
        items += response.json()
        responses.append(response)
        next_url = next_link(response)
    return items, responses


PAGED_ROUTES = [
    "/api/households",
    "/api/visitors",
    "/api/households/H001/visits",
    "/api/households/H001/services",
    "/api/households/H001/referrals",
    "/api/referrals",
    "/api/dead-letters",
    "/api/audit",
    "/api/warnings",
    "/api/accounts",
    "/api/households/H001/away",
    "/api/alerts",
]


def test_every_paged_route_is_one_of_those_checked(gateway: Gateway):
    """A GET route whose answer has X-Total-Count is a paged list, and each is checked here."""
    paths = create_api(gateway.api_context(TOKEN)).openapi()["paths"]
    paged = []
    for path, operations in paths.items():
        get = operations.get("get", {})
        if TOTAL_HEADER in get.get("responses", {}).get("200", {}).get("headers", {}):
            assert {"limit", "offset"} <= {p["name"] for p in get["parameters"]}, path
            paged.append(path.replace("{household_id}", "H001"))
    assert sorted(paged) == sorted(PAGED_ROUTES)


def test_every_list_route_is_paged(gateway: Gateway):
    """A GET route answering a JSON list pages it, or is named here with why it need not."""
    whole = {
        # The devices fitted in one home: a handful, which the dashboard shows all of.
        "/api/households/{household_id}/devices",
    }
    paths = create_api(gateway.api_context(TOKEN)).openapi()["paths"]
    unpaged = [
        path
        for path, operations in paths.items()
        if operations.get("get", {})
        .get("responses", {})
        .get("200", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
        .get("type")
        == "array"
        and TOTAL_HEADER not in operations["get"]["responses"]["200"].get("headers", {})
    ]
    assert sorted(unpaged) == sorted(whole)


@pytest.mark.parametrize("route", PAGED_ROUTES)
async def test_following_the_next_links_gives_the_whole_list_once_in_order(
    client: httpx.AsyncClient, route: str
):
    whole = await client.get(route, params={"limit": 1000}, headers=ADMIN)
    assert whole.status_code == 200
    assert "link" not in whole.headers
    expected = whole.json()
    assert len(expected) >= EACH
    assert whole.headers["x-total-count"] == str(len(expected))

    items, responses = await follow(client, f"{route}?limit=3", ADMIN)

    assert [i["id"] for i in items] == [e["id"] for e in expected]
    assert len({i["id"] for i in items}) == len(items)
    assert len(responses) == -(-len(expected) // 3)
    for n, response in enumerate(responses):
        assert response.headers["x-total-count"] == str(len(expected))
        assert len(response.json()) == min(3, len(expected) - 3 * n)
        link = next_link(response)
        if link is not None:
            assert link.startswith(f"{route}?"), link  # relative, on the same route


async def test_the_default_page_is_100_and_a_page_at_most_1000(
    client: httpx.AsyncClient, gateway: Gateway
):
    async with gateway.db.begin() as conn:
        for _ in range(110):
            await audit.record(conn, audit.Actor("admin", "admin"), "test.many", now=T0)
    first = await client.get("/api/audit", headers=ADMIN)
    assert len(first.json()) == 100
    total = int(first.headers["x-total-count"])
    assert total >= 110 + EACH
    assert next_link(first) == "/api/audit?offset=100&limit=100"
    rest = await client.get("/api/audit", params={"offset": 100}, headers=ADMIN)
    assert len(rest.json()) == total - 100
    assert "link" not in rest.headers


async def test_filters_are_kept_in_the_next_link(client: httpx.AsyncClient):
    query = [("status", "open"), ("status", "notified"), ("household", "H001")]
    first = await client.get("/api/alerts", params=[*query, ("limit", "2")], headers=ADMIN)
    assert first.headers["x-total-count"] == str(EACH // 2)  # H001's open ones
    link = next_link(first)
    assert link is not None
    assert sorted(parse_qsl(urlsplit(link).query)) == sorted(
        [*query, ("offset", "2"), ("limit", "2")]
    )
    items, _ = await follow(client, str(first.request.url), ADMIN)
    assert {(i["household_id"], i["status"]) for i in items} == {("H001", "open")}
    assert len(items) == EACH // 2

    towns = await client.get(
        "/api/households", params={"township": "别镇", "q": "老人", "limit": 3}, headers=ADMIN
    )
    assert towns.headers["x-total-count"] == "4"
    link = next_link(towns)
    assert link is not None
    assert urlsplit(link).path == "/api/households"
    assert parse_qsl(urlsplit(link).query) == [
        ("township", "别镇"),
        ("q", "老人"),
        ("offset", "3"),
        ("limit", "3"),
    ]
    items, _ = await follow(client, str(towns.request.url), ADMIN)
    assert [i["id"] for i in items] == ["H101", "H102", "H103", "H104"]


async def test_an_offset_past_the_end_is_an_empty_page_with_the_total(
    client: httpx.AsyncClient,
):
    for route in PAGED_ROUTES:
        response = await client.get(route, params={"offset": 5000}, headers=ADMIN)
        assert response.status_code == 200, route
        assert response.json() == []
        assert int(response.headers["x-total-count"]) >= EACH, route
        assert "link" not in response.headers


async def test_before_id_and_offset_page_the_same_listing(client: httpx.AsyncClient):
    whole = (await client.get("/api/households/H001/visits", headers=ADMIN)).json()
    after = await client.get(
        "/api/households/H001/visits",
        params={"before_id": whole[1]["id"], "limit": 2, "offset": 1},
        headers=ADMIN,
    )
    assert after.headers["x-total-count"] == str(EACH - 2)
    assert [v["id"] for v in after.json()] == [v["id"] for v in whole[3:5]]


async def test_a_visitors_totals_count_only_their_elders(client: httpx.AsyncClient):
    visitor = await token_for(client, name="李敏", role="visitor", phone=LI_MIN)
    households, _ = await follow(client, "/api/households?limit=2", visitor)
    assert [h["id"] for h in households] == ["H001", "H002", "H003"]
    first = await client.get("/api/households", params={"limit": 2}, headers=visitor)
    assert first.headers["x-total-count"] == "3"
    alerts_page = await client.get("/api/alerts", params={"limit": 1}, headers=visitor)
    assert alerts_page.headers["x-total-count"] == str(EACH)  # H001's, not H101's
    referrals = await client.get("/api/referrals", params={"limit": 1}, headers=visitor)
    assert referrals.headers["x-total-count"] == str(EACH)
    assert (await client.get("/api/visitors", headers=visitor)).status_code == 403


async def test_an_operators_totals_count_only_their_township(client: httpx.AsyncClient):
    operator = await token_for(client, name="周", role="operator", township="别镇")
    households = await client.get("/api/households", params={"limit": 1}, headers=operator)
    assert households.headers["x-total-count"] == "4"
    visitors, _ = await follow(client, "/api/visitors?limit=1", operator)
    assert [v["name"] for v in visitors] == ["志愿者5", "志愿者6"]
    warnings = await client.get("/api/warnings", headers=operator)
    assert warnings.headers["x-total-count"] == "0"
    assert warnings.json() == []
