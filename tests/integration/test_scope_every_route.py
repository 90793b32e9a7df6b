"""A visitor's token cannot read or change another visitor's elder, in any route.

The routes are taken from the application itself, so a route added later is covered, or this
test fails until someone says how to reach another household's records through it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
import sqlalchemy as sa
from fastapi.routing import APIWebSocketRoute

from gateway.api.app import create_api
from gateway.app import Gateway
from gateway.care.services import add_referral
from gateway.care.visit_form import ReferralIn
from gateway.care.warnings import WarningSpec, issue_warning
from gateway.clock import ManualClock
from gateway.store.rule_settings import add_away
from gateway.store.tables import alerts
from gateway.store.visits import VisitMethod, add_visit
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway, register

TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 29, 5, 52, tzinfo=UTC)
OTHER = {
    "id": "H002",
    "elder": {"name": "王秀英", "phone": "+8613800000009"},
    "address": {"county": "某县", "township": "某镇", "village": "东村", "detail": "5组1号"},
    "visitors": [{"name": "赵磊", "phone": "+8613900000009"}],
    "relatives": [{"name": "王刚", "phone": "+8613700000009", "relation": "son"}],
}

# Routes that name no household: each answers only with the caller's own households (or is
# not for visitors at all), which the checks at the end of the test look at.
NOT_ABOUT_ONE_HOUSEHOLD = {
    "/api/health",
    "/api/me",
    "/api/accounts",
    "/api/accounts/{account_id}",
    "/api/audit",
    "/api/dead-letters",
    "/api/households",
    "/api/alerts",
    "/api/overview",
    "/api/reports/response",
    "/api/warnings",
    "/api/referrals",
    "/api/visits/export",
    "/api/visitors",
    "/api/visitors/{visitor_id}",
    "/api/ledger/import",
    "/api/ledger/export",
    "/api/reports/coverage",
}
OPEN = re.compile(r"^/api/webhooks/")


async def other_households_records(gateway: Gateway) -> dict[str, str]:
    """Something of H002's for every kind of id a route may name."""
    async with gateway.db.begin() as conn:
        alert_id = (
            await conn.execute(
                sa.insert(alerts)
                .values(
                    household_id="H002",
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
        ).scalar_one()
        visit_id = await add_visit(
            conn,
            household_id="H002",
            method=VisitMethod.HOME_VISIT,
            visited_at=T0 - timedelta(days=1),
            visitor="赵磊",
            summary="上门探访",
            details={},
            now=T0,
            by="admin",
        )
        warning = await issue_warning(
            conn,
            WarningSpec("台风预警", "请检查门窗", "typhoon", "orange", "某镇", villages=("东村",)),
            by="admin",
            now=T0,
            zone=ZoneInfo("Asia/Shanghai"),
        )
        referral = await add_referral(
            conn,
            "H002",
            ReferralIn(need="屋顶漏雨", referred_to="村委会"),
            now=T0,
            by="admin",
        )
        away = await add_away(
            conn,
            "H002",
            T0 + timedelta(days=1),
            T0 + timedelta(days=2),
            note="",
            by="admin",
            now=T0,
        )
    return {
        "household_id": "H002",
        "device_id": "smoke-1",
        "alert_id": str(alert_id),
        "visit_id": str(visit_id),
        "away_id": str(away.id),
        "warning_id": str(warning.warning.id),
        "referral_id": str(referral.id),
    }


WEBSOCKETS_CHECKED_ELSEWHERE = {
    # OpenAPI lists no WebSocket: each is named here with the test that checks its scope.
    "/api/live": "test_live_feed.py::test_a_visitor_hears_of_their_elders_only",
}


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id, clock=ManualClock(T0)) as gw:
        await register(gw, HOUSEHOLD)
        await register(gw, OTHER)
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


def api_routes(gateway: Gateway) -> list[tuple[str, str]]:
    """(method, path) of every /api/ route, as the application's OpenAPI document lists them."""
    paths: dict[str, dict[str, Any]] = create_api(gateway.api_context(TOKEN)).openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
    )


async def test_a_visitor_gets_404_for_another_visitors_elder_in_every_route(
    client: httpx.AsyncClient, gateway: Gateway
):
    records = await other_households_records(gateway)
    created = await client.post(
        "/api/accounts",
        json={"name": "李敏", "role": "visitor", "phone": "+8613900000000"},
        headers=ADMIN,
    )
    visitor = {"Authorization": f"Bearer {created.json()['token']}"}

    checked = []
    for method, template in api_routes(gateway):
        if template in NOT_ABOUT_ONE_HOUSEHOLD or OPEN.match(template):
            continue
        names = re.findall(r"{(\w+)}", template)
        unknown = [n for n in names if n not in records]
        assert not unknown, f"{template}: say which of H002's records {unknown} names"
        path = template.format(**{n: records[n] for n in names})
        body: Any = {} if method in {"POST", "PUT", "PATCH"} else None
        response = await client.request(method, path, json=body, headers=visitor)
        assert response.status_code == 404, (method, template, response.text)
        assert "王秀英" not in response.text
        checked.append(f"{method} {template}")
    assert len(checked) >= 15, checked

    # The routes that name no household show none of H002's, nor count them.
    for path, total in (
        ("/api/households", 1),
        ("/api/alerts", 0),
        ("/api/alerts?order=queue", 0),
        ("/api/overview", None),
        ("/api/warnings", 0),
        ("/api/referrals", 0),
    ):
        listed = await client.get(path, headers=visitor)
        assert listed.status_code == 200
        assert "H002" not in listed.text
        if total is None:  # the overview counts in its body
            assert listed.json()["counts"]["total"] == 1
        else:
            assert listed.headers["x-total-count"] == str(total), path
    month = await client.get(
        "/api/visits/export", params={"month": "2026-11", "format": "csv"}, headers=visitor
    )
    assert month.status_code == 200
    assert "王秀英" not in month.text
    for path in ("/api/accounts", "/api/audit", "/api/dead-letters"):
        assert (await client.get(path, headers=visitor)).status_code == 403
    report = await client.get("/api/reports/response", params={"month": "2026-11"}, headers=visitor)
    assert report.status_code in (200, 403)
    assert "H002" not in report.text

    # And nothing of H002's changed.
    async with gateway.db.connect() as conn:
        status = await conn.scalar(
            sa.select(alerts.c.status).where(alerts.c.id == int(records["alert_id"]))
        )
    assert status == "open"


def websocket_paths(routes: Sequence[Any], prefix: str = "") -> set[str]:
    """The paths of the WebSocket routes among `routes`, included routers' too."""
    found: set[str] = set()
    for route in routes:
        if isinstance(route, APIWebSocketRoute):
            found.add(prefix + route.path)
        included = getattr(route, "original_router", None)
        if included is not None:
            found |= websocket_paths(included.routes, prefix + route.include_context.prefix)
    return found


async def test_every_websocket_route_has_its_scope_checked(gateway: Gateway):
    sockets = websocket_paths(create_api(gateway.api_context(TOKEN)).routes)
    assert sockets == set(WEBSOCKETS_CHECKED_ELSEWHERE)
