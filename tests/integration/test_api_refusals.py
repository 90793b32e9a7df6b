"""What the API refuses, and how: the token before the body, sizes, numbers, ids.

The ASGI app is called in-process through httpx, over a real database; a request body given as
a generator is read by the app only as far as it asks, so a test sees how much was read.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.api.app import ApiOptions, create_api
from gateway.app import Gateway
from tests.integration.harness import HOUSEHOLD, isolated_settings

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
JSON = {"Content-Type": "application/json"}


@pytest.fixture
async def gateway(sqlite_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    settings = isolated_settings("mqtt://127.0.0.1:1", sqlite_url, unique_id)
    gw = Gateway(settings, notifier=ConsoleNotifier(io.StringIO()))
    await gw.prepare()
    yield gw
    await gw.close()


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_api(gateway.api_context(TOKEN)))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as c:
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
    app = create_api(gateway.api_context(TOKEN), ApiOptions(max_body_bytes=2048))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
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
