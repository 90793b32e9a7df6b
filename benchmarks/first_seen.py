"""How fast the pipeline takes readings from devices it has not heard before: an installation
day (every device new to the database) and the first minutes after a restart (every device
registered, none in the process's memory), against devices already known, as a baseline.

--households homes × --devices each send one power reading per device, in batches of 500 (the
ingest's batch), through `Core.pipeline.process` on a manual clock: no broker, so the figure
is the pipeline's and the database's. Each measurement runs in a process of its own, on a
fresh SQLite file (or a fresh PostgreSQL database with --database-url); with --compare-tree
the same is run from another checkout (e.g. a worktree of an earlier commit) too, alternately.

    python benchmarks/first_seen.py --rounds 3 --compare-tree /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by the tests, not run
from databases import create_database, drop_database  # benchmarks/, this folder
from trees import trees as named_trees

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
BATCH = 500
PREFIX = "bench"
SCENARIOS = ("new", "restart", "known")


def batches(households: int, devices: int, minute: int) -> list[list[Any]]:
    from gateway.ingest.mqtt import InboundMessage

    at = T0 + timedelta(minutes=minute)
    messages = [
        InboundMessage(
            f"{PREFIX}/homes/H{h:05d}/plug-{d}/telemetry",
            json.dumps(
                {"kind": "power_meter", "ts": int(at.timestamp()), "power_w": 5.0 + d + minute}
            ).encode(),
            1,
            1,
            False,
            at,
        )
        for d in range(devices)
        for h in range(households)
    ]
    return [messages[i : i + BATCH] for i in range(0, len(messages), BATCH)]


async def core_on(url: str) -> Any:
    from gateway.app import Core
    from gateway.clock import ManualClock
    from gateway.config import Settings
    from gateway.observability import GatewayMetrics

    settings = Settings(
        mqtt={"url": "mqtt://127.0.0.1:1"},
        database={"url": url},
        sources=[
            {
                "name": "native",
                "format": "native",
                "topics": [f"{PREFIX}/homes/{{household}}/{{device}}/telemetry"],
            }
        ],
    )
    core = Core(settings, ManualClock(T0), GatewayMetrics(), lambda ids: None)
    await core.prepare()
    return core


async def feed(core: Any, work: list[list[Any]]) -> float:
    began = time.perf_counter()
    for batch in work:
        core.clock.set(batch[-1].received_at)
        await core.pipeline.process(batch)
    return time.perf_counter() - began


async def one(scenario: str, url: str, households: int, devices: int) -> dict[str, float]:
    from gateway.care.households import HouseholdIn, create_household

    core = await core_on(url)
    async with core.db.begin() as conn:
        for h in range(households):
            body = {"id": f"H{h:05d}", "elder": {"name": f"H{h:05d}"}}
            await create_household(conn, HouseholdIn.model_validate(body), T0)
    for h in range(households):
        await core.household_changed(f"H{h:05d}")
    if scenario != "new":  # the devices are registered by a first pass
        await feed(core, batches(households, devices, 1))
    if scenario == "restart":
        await core.close()
        core = await core_on(url)
    work = batches(households, devices, 2)
    seconds = await feed(core, work)
    await core.close()
    total = sum(len(b) for b in work)
    return {"messages": total, "seconds": seconds, "msgs_per_s": total / seconds}


def run_one(args: argparse.Namespace) -> None:
    async def main() -> dict[str, float]:
        if args.database_url:
            url = await create_database(args.database_url)
            try:
                return await one(args.one, url, args.households, args.devices)
            finally:
                await drop_database(url)
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite+aiosqlite:///{Path(folder) / 'gateway.db'}"
            return await one(args.one, url, args.households, args.devices)

    print(json.dumps(asyncio.run(main())))


def measure(args: argparse.Namespace, scenario: str, tree: Path | None) -> float:
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [sys.executable, __file__, "--one", scenario, "--households", str(args.households)]
    command += ["--devices", str(args.devices)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    return float(json.loads(out.stdout.strip().splitlines()[-1])["msgs_per_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=2500)
    parser.add_argument("--devices", type=int, default=4, help="devices per household")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a PostgreSQL server to make a database on")
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--out", type=Path, help="write the result here as JSON too")
    parser.add_argument("--one", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args)
        return
    trees = named_trees(args.compare_tree)
    rates: dict[str, dict[str, list[float]]] = {name: {s: [] for s in SCENARIOS} for name in trees}
    for _ in range(args.rounds):
        for scenario in SCENARIOS:
            for name, tree in trees.items():
                rates[name][scenario].append(measure(args, scenario, tree))
    result = {
        "households": args.households,
        "devices_per_household": args.devices,
        "database": "postgresql" if args.database_url else "sqlite",
        "rounds": args.rounds,
        "msgs_per_s": {
            name: {
                s: {"runs": [round(r) for r in runs], "median": round(statistics.median(runs))}
                for s, runs in by_scenario.items()
            }
            for name, by_scenario in rates.items()
        },
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
