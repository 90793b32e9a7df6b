"""How fast the gateway drains a backlog, as a ratio to a bare paho-mqtt subscriber draining the
same backlog from the same broker in the same run.

A private mosquitto (the shipped configuration's queue limits) holds a persistent QoS 1
session's backlog: --households homes × --per-household native readings each (a power meter,
stamped a minute apart, ~100 bytes). Each round drains the same backlog with:

- `bare`: a paho-mqtt client that acknowledges each message and does nothing else;
- `gateway`: `iot-gateway`'s ingest from this tree (SQLite in a temporary folder), timed from
  its connection to the moment every message is committed and acknowledged;
- `gateway@TREE` with --compare-tree: the same from another checkout (e.g. a worktree of an
  earlier commit), run with PYTHONPATH pointing at it.

Each drain runs in a process of its own; the rounds alternate; medians are reported.

    python benchmarks/ingest_ratio.py --rounds 3 --compare-tree /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from broker import start_broker  # benchmarks/, the script's own folder
from paho.mqtt.enums import CallbackAPIVersion

START_TS = int(time.time()) - 10 * 3600  # stamped within the last hours, a minute apart


def client(client_id: str | None = None, *, clean: bool = True) -> paho.Client:
    return paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        clean_session=clean,
        protocol=paho.MQTTv311,
    )


def subscribe_session(port: int, client_id: str, topic: str) -> None:
    """Create the persistent session (subscription at QoS 1), then leave."""
    c = client(client_id, clean=False)
    done = threading.Event()
    c.on_subscribe = lambda *args: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(topic, qos=1)
    done.wait(10)
    c.disconnect()
    c.loop_stop()


def publish_backlog(port: int, prefix: str, households: int, per_household: int) -> int:
    c = client()
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = []
    for n in range(per_household):
        for h in range(households):
            payload = json.dumps(
                {"kind": "power_meter", "ts": START_TS + 60 * n, "power_w": 100.0 + h + n % 7}
            )
            infos.append(c.publish(f"{prefix}/homes/H{h:04d}/power-1/telemetry", payload, qos=1))
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()
    return len(infos)


# --- one drain, in a process of its own -------------------------------------------------------


def drain_bare(port: int, client_id: str, total: int) -> float:
    c = client(client_id, clean=False)
    received = 0
    done = threading.Event()

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received
        received += 1
        if received >= total:
            done.set()

    c.on_message = on_message
    began = time.perf_counter()
    c.connect("127.0.0.1", port)
    c.loop_start()
    done.wait(600)
    elapsed = time.perf_counter() - began
    c.disconnect()
    c.loop_stop()
    return elapsed


async def drain_gateway(
    port: int, client_id: str, prefix: str, households: int, total: int, folder: Path
) -> float:
    from gateway.app import Gateway
    from gateway.care.households import HouseholdIn, create_household
    from gateway.config import Settings

    settings = Settings(
        mqtt={"url": f"mqtt://127.0.0.1:{port}", "client_id": client_id},
        database={"url": f"sqlite+aiosqlite:///{folder / 'gateway.db'}"},
        sources=[
            {
                "name": "native",
                "format": "native",
                "topics": [f"{prefix}/homes/{{household}}/{{device}}/telemetry"],
            }
        ],
    )
    gateway = Gateway(settings)
    await gateway.prepare()
    now = gateway.clock.now()
    async with gateway.db.begin() as conn:
        for h in range(households):
            body = {"id": f"H{h:04d}", "elder": {"name": f"H{h:04d}"}}
            await create_household(conn, HouseholdIn.model_validate(body), now)
    # Before issue 9 the directory hung off the Gateway; since, off its Core.
    directory = getattr(gateway, "directory", None) or gateway.core.directory
    for h in range(households):
        directory.remember(f"H{h:04d}")
    stop = asyncio.Event()
    began = time.perf_counter()
    run = asyncio.create_task(gateway.run(stop, admin_token=None))
    name = "iot_gateway_messages_total"
    while (gateway.metrics.registry.get_sample_value(name) or 0) < total:
        if run.done():
            run.result()
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - began
    stop.set()
    await run
    await gateway.close()
    return elapsed


def one_drain(args: argparse.Namespace) -> None:
    if args.role == "bare":
        elapsed = drain_bare(args.port, args.client_id, args.total)
    else:
        with tempfile.TemporaryDirectory() as folder:
            elapsed = asyncio.run(
                drain_gateway(
                    args.port,
                    args.client_id,
                    args.prefix,
                    args.households,
                    args.total,
                    Path(folder),
                )
            )
    print(json.dumps({"seconds": elapsed}))


# --- the driver ---------------------------------------------------------------------------------


def measure(role: str, port: int, households: int, per_household: int, tree: Path | None) -> float:
    prefix = f"bench{secrets.token_hex(3)}"
    client_id = f"drain-{secrets.token_hex(4)}"
    topic = f"{prefix}/homes/+/+/telemetry"
    subscribe_session(port, client_id, topic)
    total = publish_backlog(port, prefix, households, per_household)
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [
        sys.executable,
        __file__,
        "--one",
        role,
        "--port",
        str(port),
        "--client-id",
        client_id,
        "--prefix",
        prefix,
        "--households",
        str(households),
        "--total",
        str(total),
    ]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    seconds = float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])
    return total / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--per-household", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--one", dest="role", choices=("bare", "gateway"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client-id", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    parser.add_argument("--total", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        one_drain(args)
        return
    runs: dict[str, list[float]] = {"bare": [], "gateway": []}
    trees: dict[str, Path | None] = {"gateway": None}
    if args.compare_tree is not None:
        runs[f"gateway@{args.compare_tree}"] = []
        trees[f"gateway@{args.compare_tree}"] = args.compare_tree
    with tempfile.TemporaryDirectory() as folder:
        broker, port = start_broker(Path(folder))
        try:
            for _ in range(args.rounds):
                for name in runs:
                    role = "bare" if name == "bare" else "gateway"
                    rate = measure(role, port, args.households, args.per_household, trees.get(name))
                    runs[name].append(rate)
                    print(f"{name}: {rate:,.0f} msg/s", file=sys.stderr, flush=True)
        finally:
            broker.terminate()
            broker.wait()
    bare = statistics.median(runs["bare"])
    summary: dict[str, Any] = {
        "messages": args.households * args.per_household,
        "rounds": args.rounds,
    }
    for name, rates in runs.items():
        median = statistics.median(rates)
        summary[name] = {
            "msgs_per_s": [round(r) for r in rates],
            "median_msgs_per_s": round(median),
            "ratio_to_bare": round(median / bare, 3),
        }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
