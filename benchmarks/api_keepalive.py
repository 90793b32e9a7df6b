"""Requests a second on one kept-alive connection: the API's socket made as before, and now.

Browsers and httpx keep connections alive. When the listening socket was made with
`socket.create_server` (proto 0), asyncio never set TCP_NODELAY on accepted connections, and
each response waited ~40 ms for the client's delayed ACK. `gateway.app.listen` makes it with
IPPROTO_TCP. Both serve the same API (a real gateway's, on SQLite) in this process, alternately;
a client in another thread sends `GET /api/households` on one connection:

    python benchmarks/api_keepalive.py --requests 200 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn

from gateway.api.app import create_api
from gateway.app import Gateway, listen
from gateway.config import Settings

TOKEN = secrets.token_urlsafe(24)


def kept_alive(url: str, requests: int) -> tuple[float, float]:
    """(requests per second, median round trip in ms) on one connection."""
    times = []
    with httpx.Client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        began = time.perf_counter()
        for _ in range(requests):
            asked = time.perf_counter()
            assert client.get(url).status_code == 200
            times.append(time.perf_counter() - asked)
        total = time.perf_counter() - began
    return requests / total, statistics.median(times) * 1000


async def serve_and_measure(
    gateway: Gateway, sock: socket.socket, requests: int
) -> tuple[float, float]:
    config = uvicorn.Config(
        create_api(gateway.api_context(TOKEN)), log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    # The socket listens already: connections wait in its backlog until the server accepts.
    task = asyncio.create_task(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    try:
        return await asyncio.to_thread(
            kept_alive, f"http://127.0.0.1:{port}/api/households", requests
        )
    finally:
        server.should_exit = True
        await task


async def main(requests: int, rounds: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"},
            mqtt={"url": "mqtt://127.0.0.1:1"},
        )
        gateway = Gateway(settings)
        await gateway.prepare()
        runs: dict[str, list[tuple[float, float]]] = {"create_server": [], "listen": []}
        try:
            for _ in range(rounds):
                before = socket.create_server(("127.0.0.1", 0))
                runs["create_server"].append(await serve_and_measure(gateway, before, requests))
                runs["listen"].append(
                    await serve_and_measure(gateway, listen("127.0.0.1", 0), requests)
                )
        finally:
            await gateway.close()
    summary: dict[str, object] = {"requests": requests, "rounds": rounds}
    for name, results in runs.items():
        summary[name] = {
            "requests_per_s_median": round(statistics.median(r for r, _ in results), 1),
            "round_trip_ms_median": round(statistics.median(m for _, m in results), 2),
        }
    summary["ratio_listen_to_create_server"] = round(
        statistics.median(r for r, _ in runs["listen"])
        / statistics.median(r for r, _ in runs["create_server"]),
        1,
    )
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.requests, args.rounds)), indent=2))
