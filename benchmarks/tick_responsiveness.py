"""How long the event loop stalls while the time-driven rules tick over a county's households.

The rules tick every 30 s over every household. Run in one piece on the event loop (as until
issue 9), it stalls everything else the process does for as long as it takes: the health probe,
the API, ingest. The detector ticks in slices and gives the loop back between them.

Both ways run on the same households in the same process, alternately, and a probe task that
asks for the loop every 5 ms records the longest wait during each tick:

    python benchmarks/tick_responsiveness.py --households 100000 --rounds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.app import Core
from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.models import DeviceKind, Metric, Reading
from gateway.observability import GatewayMetrics

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)  # 14:00 in Asia/Shanghai: rules awake
PROBE_S = 0.005


def populate(core: Core, households: int, readings: int, seed: int) -> None:
    """Households with a water meter, a power meter, a smoke alarm and a call button, each
    heard recently, and `readings` hours of meter readings in their activity logs."""
    rng = random.Random(seed)
    engine = core.detector.engine
    for n in range(households):
        hid = f"H{n:06}"
        for device, kind in (
            ("water", DeviceKind.WATER_METER),
            ("power", DeviceKind.POWER_METER),
            ("smoke", DeviceKind.SMOKE_DETECTOR),
            ("button", DeviceKind.CALL_BUTTON),
        ):
            seen = NOW - timedelta(minutes=rng.uniform(0, 20))
            engine.note_device(hid, device, kind=kind, source="native", last_seen=seen)
        total = rng.uniform(1e4, 1e5)
        for hours in range(readings, 0, -1):
            at = NOW - timedelta(hours=hours)
            total += rng.choice((0.0, 0.0, 5.0, 30.0))
            engine.on_reading(Reading(hid, "water", None, Metric.WATER_TOTAL_L, total, "L", at))
            engine.on_reading(
                Reading(hid, "power", None, Metric.POWER_W, rng.uniform(5, 900), "W", at)
            )


async def longest_stall(work: asyncio.Future[None]) -> float:
    """The longest the loop made a 5 ms sleeper wait beyond its 5 ms while `work` ran."""
    worst = 0.0
    while not work.done():
        asked = time.perf_counter()
        await asyncio.sleep(PROBE_S)
        worst = max(worst, time.perf_counter() - asked - PROBE_S)
    return worst


async def in_one_piece(core: Core) -> None:
    """The tick as it was: every household at once, on the loop."""
    core.detector.engine.on_tick(NOW)


async def measure(core: Core, sliced: bool) -> tuple[float, float]:
    began = time.perf_counter()
    work = asyncio.ensure_future(core.detector.tick(NOW) if sliced else in_one_piece(core))
    stall = await longest_stall(work)
    await work
    return time.perf_counter() - began, stall


async def main(households: int, readings: int, rounds: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(
            database={"url": f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"},
            mqtt={"url": "mqtt://127.0.0.1:1"},
        )
        core = Core(settings, ManualClock(NOW), GatewayMetrics(), lambda ids: None)
        await core.prepare()
        try:
            began = time.perf_counter()
            populate(core, households, readings, seed)
            setup_s = time.perf_counter() - began
            results: dict[str, list[tuple[float, float]]] = {"one_piece": [], "sliced": []}
            for _ in range(rounds):
                results["one_piece"].append(await measure(core, sliced=False))
                results["sliced"].append(await measure(core, sliced=True))
        finally:
            await core.close()
    summary: dict[str, object] = {
        "households": households,
        "rounds": rounds,
        "setup_s": round(setup_s, 1),
    }
    for name, runs in results.items():
        summary[name] = {
            "tick_s_median": round(statistics.median(t for t, _ in runs), 3),
            "longest_stall_ms_median": round(statistics.median(s for _, s in runs) * 1000, 1),
        }
    one, sliced = results["one_piece"], results["sliced"]
    summary["stall_ratio_sliced_to_one_piece"] = round(
        statistics.median(s for _, s in sliced) / statistics.median(s for _, s in one), 4
    )
    summary["tick_time_ratio_sliced_to_one_piece"] = round(
        statistics.median(t for t, _ in sliced) / statistics.median(t for t, _ in one), 3
    )
    return summary


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100_000)
    parser.add_argument("--readings", type=int, default=6, help="hours of readings each")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    result = asyncio.run(main(args.households, args.readings, args.rounds, args.seed))
    print(json.dumps(result, indent=2))
