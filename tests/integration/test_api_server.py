"""The API as `Gateway.run` serves it: a real listening socket on loopback."""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.app import Gateway
from gateway.config import Settings
from tests.integration.harness import isolated_settings

TOKEN = "server-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Gateway]:
    """`Gateway.run` with an admin token, until the block ends."""
    gateway = Gateway(settings, notifier=ConsoleNotifier(io.StringIO()))
    await gateway.prepare()
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop, admin_token=TOKEN))
    try:
        for _ in range(200):
            if gateway.http is not None and gateway.http.started:
                break
            await asyncio.sleep(0.02)
        assert gateway.http is not None, "the API did not start"
        assert gateway.http.started, "the API did not start"
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await gateway.close()


def loopback_settings(database_url: str, prefix: str, **extra: Any) -> Settings:
    # No broker answers on port 1: ingest keeps retrying in the background, the API serves.
    http = {"host": "127.0.0.1", "port": 0}
    return isolated_settings("mqtt://127.0.0.1:1", database_url, prefix, http=http, **extra)


@pytest.fixture
async def served(sqlite_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    async with serving(loopback_settings(sqlite_url, unique_id)) as gateway:
        yield gateway


async def test_a_kept_alive_connection_answers_without_the_delayed_ack_stall(served: Gateway):
    # Nagle's algorithm holds a response's body until the client acknowledges its headers, and
    # the client delays that ACK by ~40 ms: on a kept-alive connection (browsers, httpx) every
    # request then takes ~40 ms, unless the server sets TCP_NODELAY on the accepted socket.
    url = f"http://127.0.0.1:{served.http_port}/api/households"
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(limits=limits) as client:
        assert (await client.get(url, headers=AUTH)).status_code == 200  # connect, warm up
        round_trips = []
        for _ in range(20):
            started = time.perf_counter()
            response = await client.get(url, headers=AUTH)
            round_trips.append(time.perf_counter() - started)
            assert response.status_code == 200
        assert served.http is not None
        [connection] = served.http.server_state.connections  # the one kept-alive connection
        accepted = connection.transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    median_ms = statistics.median(round_trips) * 1000
    assert median_ms < 15, f"median round trip {median_ms:.1f} ms on a kept-alive connection"


async def test_uvicorn_logs_reach_the_gateways_masking_handlers(served: Gateway):
    # The CLI's handlers sit on the root logger; uvicorn's own logging config would give its
    # loggers handlers of their own, which never see the masking filter.
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger().addHandler(handler)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", served.http_port)
        writer.write(b"NOT HTTP AT ALL +8613912345678\r\n\r\n")
        await writer.drain()
        await reader.read()  # uvicorn answers 400 and closes
        writer.close()
    finally:
        logging.getLogger().removeHandler(handler)
    assert any(r.name == "uvicorn.error" and "Invalid HTTP request" in r.msg for r in seen)


async def head_of_response(port: int, request_head: bytes, first_chunk: bytes) -> bytes:
    """Send a request's head and the first bytes of its body; return the response's head.

    The rest of the announced body is never sent: an answer proves the server did not wait.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request_head + first_chunk)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()


async def test_a_big_unauthenticated_post_is_refused_before_its_body_arrives(served: Gateway):
    assert served.http_port is not None
    head = (
        b"POST /api/households HTTP/1.1\r\nHost: gateway\r\n"
        b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
    )
    response = await head_of_response(served.http_port, head, b'{"id": "' + b"x" * 1000)
    assert response.startswith(b"HTTP/1.1 401 ")


async def test_a_body_announced_too_large_is_refused_before_it_arrives(served: Gateway):
    assert served.http_port is not None
    head = (
        b"POST /api/households HTTP/1.1\r\nHost: gateway\r\n"
        b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 52428800\r\n\r\n"
    )
    response = await head_of_response(served.http_port, head, b'{"id": "' + b"x" * 1000)
    assert response.startswith(b"HTTP/1.1 413 ")


async def test_in_production_the_docs_are_off_and_metrics_need_the_token(
    sqlite_url: str, unique_id: str
):
    settings = loopback_settings(sqlite_url, unique_id, environment="production")
    async with serving(settings) as gateway, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{gateway.http_port}"
        for path in ("/docs", "/openapi.json"):
            assert (await client.get(url + path)).status_code == 404
            assert (await client.get(url + path, headers=AUTH)).status_code == 404
        assert (await client.get(url + "/metrics")).status_code == 401
        metrics = await client.get(url + "/metrics", headers=AUTH)
        assert metrics.status_code == 200
        assert "iot_gateway_readings_total" in metrics.text
