"""What the API refuses, and how: the token before the body, sizes, numbers, ids.

The ASGI app is called in-process through httpx, over a real database; a request body given as
a generator is read by the app only as far as it asks, so a test sees how much was read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from gateway.api.app import ApiOptions, Exposure, create_api
from gateway.api.paging import TOTAL_HEADER
from gateway.app import Gateway
from tests.integration.harness import HOUSEHOLD, api_client, offline_gateway

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def gateway(sqlite_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(sqlite_url, unique_id) as gw:
        yield gw


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


class Body:
    """A request body of `chunks` × 64 KiB that counts how many chunks the server read."""

    def __init__(self, chunks: int) -> None:
        self.chunks = chunks
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.chunks):
            self.read += 1
            yield b" " * 65536


# --- the token, before the body -----------------------------------------------------------------


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong-token-0123456789"}])
async def test_a_body_without_a_valid_token_is_not_read(
    client: httpx.AsyncClient, headers: dict[str, str]
):
    body = Body(800)  # 50 MiB
    response = await client.post("/api/households", content=body, headers={**JSON, **headers})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "missing or invalid bearer token"}
    assert body.read == 0


@pytest.mark.parametrize(
    "authorization", ["", "Bearer", "Bearer ", "Basic dGVzdDp0ZXN0", f"Token {TOKEN}", TOKEN]
)
async def test_malformed_authorization_headers_are_refused(
    client: httpx.AsyncClient, authorization: str
):
    response = await client.get("/api/alerts", headers={"Authorization": authorization})
    assert response.status_code == 401


async def test_the_scheme_is_case_insensitive(client: httpx.AsyncClient):
    response = await client.get("/api/alerts", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200


async def test_unknown_paths_say_nothing_to_strangers(client: httpx.AsyncClient):
    # Under /api/ a stranger cannot tell a route from no route; elsewhere there is nothing.
    assert (await client.get("/api/nothing-here")).status_code == 401
    assert (await client.get("/api/nothing-here", headers=AUTH)).status_code == 404
    assert (await client.get("/nothing-here")).status_code == 404
    assert (await client.get("/api/health")).status_code in (200, 503)


# --- body size ----------------------------------------------------------------------------------


async def test_a_body_announced_larger_than_the_limit_is_refused_unread(client: httpx.AsyncClient):
    body = Body(800)
    headers = {**AUTH, **JSON, "Content-Length": str(800 * 65536)}
    response = await client.post("/api/households", content=body, headers=headers)
    assert response.status_code == 413
    assert body.read == 0


async def test_a_streamed_body_is_cut_at_the_limit(client: httpx.AsyncClient):
    body = Body(800)  # chunked: no length announced
    response = await client.post("/api/households", content=body, headers={**AUTH, **JSON})
    assert response.status_code == 413
    assert body.read <= 17  # 1 MiB and the chunk that crossed it; not 50 MiB


async def test_the_limit_is_configurable(gateway: Gateway):
    async with api_client(gateway, TOKEN, ApiOptions(max_body_bytes=2048)) as client:
        padded = b" " * 2048 + json.dumps(HOUSEHOLD).encode()  # valid JSON, over the limit
        response = await client.post("/api/households", content=padded, headers={**AUTH, **JSON})
        assert response.status_code == 413
        created = await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
        assert created.status_code == 201


async def test_rule_overrides_keep_their_own_smaller_limit(client: httpx.AsyncClient):
    assert (await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)).status_code == 201
    overrides = {"no_water_use": {"window_h": 16, "x": "a" * 20_000}}  # 20 KB of 1 MiB
    response = await client.put("/api/households/H001/rules", json=overrides, headers=AUTH)
    assert response.status_code == 413


# --- JSON and validation errors -----------------------------------------------------------------


def routes_with_a_body(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route that takes a JSON body, with its path filled in."""
    filled = {
        "household_id": "H001",
        "device_id": "smoke-1",
        "alert_id": "1",
        "away_id": "1",
        "warning_id": "1",
        "referral_id": "1",
        "visitor_id": "1",
    }
    found = []
    for path, operations in app.openapi()["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method.upper(), path.format(**filled)))
    return found


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
async def test_non_finite_numbers_are_refused_by_every_route_with_a_body(
    client: httpx.AsyncClient, gateway: Gateway, literal: str
):
    assert (await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)).status_code == 201
    routes = routes_with_a_body(create_api(gateway.api_context(TOKEN)))
    assert len(routes) >= 6
    for method, path in routes:
        body = f'{{"note": "NaN in a string is fine", "value": {literal}}}'
        response = await client.request(method, path, content=body, headers={**AUTH, **JSON})
        assert response.status_code == 422, (method, path, response.text)
        [error] = response.json()["detail"]
        assert error == {
            "loc": ["body", body.index(literal, 20)],
            "msg": f"JSON decode error: {literal} is not allowed: numbers must be finite",
            "type": "json_invalid",
        }


async def test_malformed_json_is_a_422_that_names_the_place(client: httpx.AsyncClient):
    response = await client.post("/api/households", content='{"id": }', headers={**AUTH, **JSON})
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"loc": ["body", 7], "msg": "JSON decode error: Expecting value", "type": "json_invalid"}
    ]
    deep = "[" * 5_000 + "]" * 5_000
    nested = await client.post("/api/households", content=deep, headers={**AUTH, **JSON})
    assert nested.status_code == 422


async def test_validation_errors_do_not_echo_what_was_sent(client: httpx.AsyncClient):
    body = {
        **HOUSEHOLD,
        "elder": {"name": "张桂兰", "phone": "call 13912345678", "id_card": "11010519491231002X"},
    }
    response = await client.post("/api/households", json=body, headers=AUTH)
    assert response.status_code == 422
    errors = response.json()["detail"]
    assert {tuple(e["loc"]) for e in errors} == {
        ("body", "elder", "phone"),
        ("body", "elder", "id_card"),
    }
    assert all(set(e) == {"loc", "msg", "type"} for e in errors)
    for sent in ("13912345678", "11010519491231002X", "张桂兰", "某村"):
        assert sent not in response.text


async def test_a_failure_inside_a_route_is_a_500_that_logs_no_personal_data(
    client: httpx.AsyncClient, gateway: Gateway, caplog: pytest.LogCaptureFixture
):
    async with gateway.db.begin() as conn:
        await conn.execute(sa.text("DROP TABLE contacts"))  # the insert of the contacts fails
    with caplog.at_level(logging.ERROR):
        response = await client.post("/api/households", json=HOUSEHOLD, headers=AUTH)
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error"}
    assert [r.levelname for r in caplog.records if r.name == "gateway.api.errors"] == ["ERROR"]
    logged = caplog.text
    assert "POST /api/households failed: OperationalError" in logged
    assert "no such table: contacts" in logged
    assert "households.py" in logged  # where it happened
    for sent in ("+8613900000000", "13900000000", "李敏", "王强", "3组12号", "INSERT"):
        assert sent not in logged, sent


# --- ids ----------------------------------------------------------------------------------------


@pytest.fixture
async def gateway_on_each_database(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with offline_gateway(database_url, unique_id) as gw:
        yield gw


@pytest.fixture
def gateway_app(gateway_on_each_database: Gateway) -> FastAPI:
    return create_api(gateway_on_each_database.api_context(TOKEN))


@pytest.fixture
async def client_on_each_database(
    gateway_on_each_database: Gateway,
) -> AsyncIterator[httpx.AsyncClient]:
    """As `client`, once on SQLite and once on PostgreSQL (whose integers are 32-bit)."""
    async with api_client(gateway_on_each_database, TOKEN) as c:
        assert (await c.post("/api/households", json=HOUSEHOLD, headers=AUTH)).status_code == 201
        yield c


ID_ROUTES = [
    ("GET", "/api/alerts/{id}"),
    ("POST", "/api/alerts/{id}/ack"),
    ("POST", "/api/alerts/{id}/resolve"),
    ("DELETE", "/api/households/H001/away/{id}"),
    ("GET", "/api/alerts?before_id={id}"),
]


async def test_ids_beyond_the_databases_integers_are_refused_not_failed(
    client_on_each_database: httpx.AsyncClient,
):
    client = client_on_each_database
    for method, route in ID_ROUTES:
        for too_big in (2**31, 2**63, 2**64, 10**30):
            response = await client.request(
                method, route.format(id=too_big), json={"note": "done"}, headers=AUTH
            )
            assert response.status_code == 422, (method, route, too_big, response.text)
        largest = await client.request(
            method, route.format(id=2**31 - 1), json={"note": "done"}, headers=AUTH
        )
        assert largest.status_code in (200, 404), (method, route, largest.text)
        for not_an_id in (0, -1, "x"):
            response = await client.request(
                method, route.format(id=not_an_id), json={"note": "done"}, headers=AUTH
            )
            assert response.status_code == 422, (method, route, not_an_id)


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("GET", "/api/households/{id}", None),
        ("PUT", "/api/households/{id}/devices/smoke-1", {"kind": "smoke_detector"}),
        ("GET", "/api/households/{id}/rules", None),
        ("PUT", "/api/households/{id}/rules", {}),
        ("GET", "/api/households/{id}/away", None),
        ("POST", "/api/households/{id}/away", {"until": "2026-12-01T18:00:00+08:00"}),
        ("DELETE", "/api/households/{id}/away/1", None),
        ("GET", "/api/households/{id}/activity", None),
        ("GET", "/api/households/{id}/series", None),
    ],
)
async def test_household_ids_longer_than_stored_ones_are_refused(
    client: httpx.AsyncClient, method: str, route: str, body: dict[str, str] | None
):
    too_long = await client.request(method, route.format(id="H" * 65), json=body, headers=AUTH)
    assert too_long.status_code == 422, too_long.text
    longest = await client.request(method, route.format(id="H" * 64), json=body, headers=AUTH)
    assert longest.status_code == 404, longest.text


# --- paging -------------------------------------------------------------------------------------


def paged_routes(app: FastAPI) -> list[str]:
    """Every paged list route (its answer has X-Total-Count), with its path filled in."""
    found = []
    for path, operations in app.openapi()["paths"].items():
        answer = operations.get("get", {}).get("responses", {}).get("200", {})
        if TOTAL_HEADER in answer.get("headers", {}):
            found.append(path.format(household_id="H001"))
    return found


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "0"),
        ("limit", "-1"),
        ("limit", "1001"),
        ("limit", str(2**63)),
        ("limit", "x"),
        ("limit", "1.5"),
        ("limit", ""),
        ("offset", "-1"),
        ("offset", str(2**31)),
        ("offset", str(10**30)),
        ("offset", "x"),
        ("offset", "1e3"),
    ],
)
async def test_paging_parameters_out_of_range_are_a_422_naming_the_parameter(
    client_on_each_database: httpx.AsyncClient, gateway_app: FastAPI, name: str, value: str
):
    routes = paged_routes(gateway_app)
    assert len(routes) >= 12
    for route in routes:
        response = await client_on_each_database.get(route, params={name: value}, headers=AUTH)
        assert response.status_code == 422, (route, name, value, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["query", name]
        assert set(error) == {"loc", "msg", "type"}  # the refused value is not echoed
        assert "x-total-count" not in response.headers


async def test_the_largest_paging_parameters_are_answered(
    client_on_each_database: httpx.AsyncClient, gateway_app: FastAPI
):
    for route in paged_routes(gateway_app):
        response = await client_on_each_database.get(
            route, params={"limit": 1000, "offset": 2**31 - 1}, headers=AUTH
        )
        assert response.status_code == 200, (route, response.text)
        assert response.json() == []


# --- docs and metrics ---------------------------------------------------------------------------


async def statuses(gateway: Gateway, options: ApiOptions, path: str) -> tuple[int, int]:
    """The status of GET `path` without, then with, the token."""
    async with api_client(gateway, TOKEN, options) as client:
        return (await client.get(path)).status_code, (
            await client.get(path, headers=AUTH)
        ).status_code


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
@pytest.mark.parametrize(
    ("docs", "expected"), [("public", (200, 200)), ("token", (401, 200)), ("off", (404, 404))]
)
async def test_the_docs_are_public_behind_the_token_or_off(
    gateway: Gateway, path: str, docs: Exposure, expected: tuple[int, int]
):
    assert await statuses(gateway, ApiOptions(docs=docs), path) == expected


@pytest.mark.parametrize(
    ("metrics", "expected"), [("public", (200, 200)), ("token", (401, 200)), ("off", (404, 404))]
)
async def test_metrics_are_public_behind_the_token_or_off(
    gateway: Gateway, metrics: Exposure, expected: tuple[int, int]
):
    assert await statuses(gateway, ApiOptions(metrics=metrics), "/metrics") == expected


async def test_with_the_docs_off_the_api_still_answers(gateway: Gateway):
    options = ApiOptions(docs="off", metrics="off")
    assert await statuses(gateway, options, "/api/alerts") == (401, 200)
