"""Resident memory of `iot-gateway run` per device at 10,000 and 100,000 devices (issue 13: at
most 2 KB a device at 100,000), and at the issue's own 400,000 (100,000 homes) on request.

Each home has 4 devices, so the default sizes are 2,500 and 25,000 households. For each size, on
a fresh database (a SQLite file, or a new PostgreSQL database with --database-url):

1. empty: `iot-gateway run` on the migrated, empty database; its resident memory is the
   baseline every per-device figure is taken against;
2. fill, in a process of its own: the households written straight into their table (as
   benchmarks/dashboard.py builds its county), then --days days of history through
   `Core.pipeline.process` in batches (as benchmarks/first_seen.py): each day the smoke
   detector, the health monitor, the water meter and the power meter of every home report once,
   15 minutes apart in the morning (water used, power above standby: a confirmed start of the
   day for the rules' activity log); the last day's reports are stamped with the wall clock as
   they are fed, so no device looks silent when the gateway starts. The devices are registered
   by their own first messages, device_state and readings stored, the activity logs saved;
3. restart: `iot-gateway run` (a subprocess, its own interpreter, a private Mosquitto) on the
   filled database; start-up = spawn → `/api/health` answers 200 (the API serves only after the
   start-up load); memory once the first rules tick has run (--no-tick: at once);
4. live: every device reports once more through the broker (QoS 1, one paho client); memory
   once the gateway has committed every message (and, without --no-tick, after the next tick);
5. saved (without --no-tick): memory once the rules' state of as many households as there are
   has been saved since the live reports began (every household changed: the gateway saves
   the changed ones every 5 minutes), the peak (VmHWM) then covering that save too.

Resident memory is VmRSS from /proc/PID/status (VmHWM: the peak); per device =
(RSS − the empty gateway's RSS) / devices. With --profile, a process of its own runs
`Core.prepare()` on the largest filled database under tracemalloc and reports the top lines
and the gateway's own lines the live memory was allocated from. With --compare-tree the same
runs from another checkout too (its fill, its gateway), alternately.

    python benchmarks/memory.py --profile
    python benchmarks/memory.py --households 100000 --out benchmarks/results/memory-sqlite-400k.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))  # when imported by the tests, not run
from broker import free_port, start_broker  # noqa: E402  (benchmarks/, this folder)
from databases import fresh_database  # noqa: E402
from trees import trees as named_trees  # noqa: E402

PREFIX = "bench"
BATCH = 1000
TOKEN = secrets.token_urlsafe(24)
DEVICES = ("smoke-1", "hm-1", "water-1", "power-1")
SLOT = timedelta(minutes=15)
TARGET_KB_PER_DEVICE = 2.0
FRAMES = 8
"""Frames kept per allocation by the profile: enough to find the gateway's line under
SQLAlchemy's; every frame more slows the traced start-up further (8 frames: about ×15)."""
UNACKED = 10_000
STALLED_S = 120
"""The live case fails when the gateway commits nothing for this long (on a shared machine its
ingest may crawl, which is no failure)."""
RESULTS = ROOT / "benchmarks" / "results"


def payload(device: str, day: int, h: int) -> dict[str, Any]:
    """What `device` of home `h` reports on history day `day`: ordinary values, with water used
    and power above standby, so each morning is activity."""
    if device == "smoke-1":
        return {"kind": "smoke_detector", "smoke": False, "battery_pct": 90 - day % 5}
    if device == "hm-1":
        return {
            "kind": "health_monitor",
            **{"heart_rate_bpm": 60 + h % 25, "spo2_pct": 97, "bp_systolic_mmhg": 128},
            "bp_diastolic_mmhg": 82,
        }
    if device == "water-1":
        return {"kind": "water_meter", "water_total_l": 180_000.0 + h % 1000 + 35.5 * day}
    return {"kind": "power_meter", "power_w": 850.0, "energy_total_kwh": 5000.0 + 2.5 * day}


def topic(hid: str, device: str) -> str:
    return f"{PREFIX}/homes/{hid}/{device}/telemetry"


def household_ids(n: int) -> list[str]:
    return [f"H{k + 1:06d}" for k in range(n)]


def history(n: int, days: int, end: datetime) -> Iterator[list[Any]]:
    """Batches of the fill's messages, oldest first, made as they are consumed (a province's
    history does not fit in this process's memory as objects). The last day is stamped now."""
    from gateway.ingest.mqtt import InboundMessage

    ids = household_ids(n)
    for day in range(days):
        morning = end - timedelta(days=days - 1 - day, hours=1)
        for slot, device in enumerate(DEVICES):
            for k in range(0, n, BATCH):
                at = morning + slot * SLOT if day < days - 1 else datetime.now(UTC)
                yield [
                    InboundMessage(
                        topic(hid, device),
                        json.dumps(payload(device, day, h) | {"ts": at.timestamp()}).encode(),
                        1,
                        1,
                        False,
                        at,
                    )
                    for h, hid in enumerate(ids[k : k + BATCH], start=k)
                ]


def settings_for(url: str) -> Any:
    from gateway.config import Settings

    return Settings(
        mqtt={"url": "mqtt://127.0.0.1:1"},
        database={"url": url},
        sources=[
            {"name": "native", "format": "native", "topics": [topic("{household}", "{device}")]}
        ],
    )


def new_core(url: str) -> Any:
    """The gateway's core (database, directory, detector, pipeline) on `url`, not yet loaded."""
    from gateway.app import Core
    from gateway.clock import ManualClock
    from gateway.observability import GatewayMetrics

    return Core(settings_for(url), ManualClock(datetime.now(UTC)), GatewayMetrics(), lambda _: None)


async def core_on(url: str) -> Any:
    core = new_core(url)
    await core.prepare()
    return core


def memory_of(pid: int) -> dict[str, float]:
    """Resident memory now and at its peak, MB (Linux /proc)."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {
        key: int(fields[name].split()[0]) / 1024
        for key, name in (("rss_mb", "VmRSS"), ("hwm_mb", "VmHWM"))
    }


def homes(n: int, at: datetime) -> list[dict[str, Any]]:
    """The households' rows: 10 townships × 20 villages, as benchmarks/dashboard.py's county."""
    rng = random.Random(13)
    return [
        {
            "id": hid,
            "elder_name": f"老人{k}",
            "county": "大方县",
            "township": f"镇{k % 10}",
            "village": f"镇{k % 10}村{rng.randrange(20)}",
            "address_detail": f"{rng.randint(1, 12)}组{rng.randint(1, 60)}号",
            "details": {},
            "risk": "normal",
            "created_at": at,
            "updated_at": at,
        }
        for k, hid in enumerate(household_ids(n))
    ]


async def fill(url: str, n: int, days: int) -> dict[str, Any]:
    """Households straight into their table, then `days` days of history through the pipeline."""
    import sqlalchemy as sa

    from gateway.store.tables import households

    began = time.perf_counter()
    core = await core_on(url)
    rows = homes(n, datetime.now(UTC))
    async with core.db.begin() as conn:
        for k in range(0, n, 5000):
            await conn.execute(sa.insert(households), rows[k : k + 5000])
    await core.close()
    core = await core_on(url)  # the directory and the rules now know every household
    messages = 0
    for batch in history(n, days, datetime.now(UTC)):
        core.clock.set(batch[-1].received_at)
        result = await core.pipeline.process(batch)
        messages += len(batch)
        assert not result.dead_letters, result  # every message a reading, none refused
    saved = await core.detector.save_state()
    await core.close()
    seconds = time.perf_counter() - began
    return {
        "messages": messages,
        "rule_states_saved": saved,
        "seconds": round(seconds, 1),
        "msgs_per_s": round(messages / seconds),
        "process": memory_of(os.getpid()),
    }


def gateway_config(folder: Path, broker: int, http: int, url: str) -> Path:
    path = folder / f"gateway-{secrets.token_hex(3)}.toml"
    path.write_text(
        'log_level = "WARNING"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker}"\nclient_id = "gw-{path.stem}"\n'
        f"[database]\nurl = {json.dumps(url)}\n"
        f"[http]\nport = {http}\n"
        '[[sources]]\nname = "native"\nformat = "native"\n'
        f"topics = {json.dumps([topic('{household}', '{device}')])}\n"
    )
    return path


def one_process(command: list[str], tree: Path | None) -> list[str]:
    """`--workers 1` where the tree's CLI has it: this measures one process, and on PostgreSQL
    `run` would otherwise start one per core."""
    # Our own CLI: no outside input.
    out = subprocess.run(  # noqa: S603
        [*command, "run", "--help"], env=tree_env(tree), capture_output=True, text=True
    )
    return ["--workers", "1"] if "--workers" in out.stdout else []


def tree_env(tree: Path | None) -> dict[str, str]:
    env = dict(os.environ, GATEWAY_ADMIN_TOKEN=TOKEN)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    return env


class Running:
    """An `iot-gateway run` process and its API."""

    def __init__(self, folder: Path, broker: int, url: str, tree: Path | None) -> None:
        http = free_port()
        config = gateway_config(folder, broker, http, url)
        self.log = (folder / f"{config.stem}.log").open("w")
        script = Path(sys.executable).with_name("iot-gateway")
        command = [str(script)] if script.exists() else ["iot-gateway"]
        self.began = time.monotonic()
        # Our own CLI and config file: no outside input.
        run = [*command, "--config", str(config), "run", *one_process(command, tree)]
        self.process = subprocess.Popen(run, env=tree_env(tree), stderr=self.log)  # noqa: S603
        auth = {"Authorization": f"Bearer {TOKEN}"}
        self.api = httpx.Client(base_url=f"http://127.0.0.1:{http}", headers=auth, timeout=60)

    def wait_healthy(self, timeout_s: float) -> float:
        """Seconds from spawn until /api/health answers 200."""
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.log.name}")
            try:
                if self.api.get("/api/health").status_code == 200:
                    return time.monotonic() - self.began
            except httpx.TransportError:
                pass
            if time.monotonic() - self.began > timeout_s:
                raise TimeoutError("the gateway did not start")
            time.sleep(0.1)

    def metric(self, name: str) -> float:
        for line in self.api.get("/metrics").text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return 0.0

    def wait_tick(self, after: float, timeout_s: float = 300) -> None:
        """Until the rules have ticked more than `after` times (the first tick is 30 s in)."""
        deadline = time.monotonic() + timeout_s
        while self.metric("iot_gateway_rule_tick_seconds_count") <= after:
            if time.monotonic() > deadline:
                raise TimeoutError("no rules tick")
            time.sleep(0.5)

    def wait_saved(self, households: float, timeout_s: float = 600) -> None:
        """Until the rules' state of `households` households in all has been saved."""
        deadline = time.monotonic() + timeout_s
        while self.metric("iot_gateway_rule_state_saved_total") < households:
            if time.monotonic() > deadline:
                raise TimeoutError("no rule-state save")
            time.sleep(1)

    def memory(self) -> dict[str, float]:
        return {k: round(v, 1) for k, v in memory_of(self.process.pid).items()}

    def stop(self) -> None:
        self.api.close()
        self.process.terminate()
        self.process.wait(120)
        self.log.close()


def publisher(port: int) -> paho.Client:
    device = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    device.max_inflight_messages_set(1000)
    device.max_queued_messages_set(0)
    device.connect("127.0.0.1", port)
    device.loop_start()
    return device


def report_once_more(gateway: Running, port: int, n: int) -> dict[str, float]:
    """Every device reports once through the broker; how long until all are committed."""
    device = publisher(port)
    try:
        while gateway.metric("iot_gateway_messages_total") < 1:  # subscribed yet?
            device.publish(topic("H000001", "smoke-1"), json.dumps(payload("smoke-1", 0, 0)), 1)
            time.sleep(0.2)
        time.sleep(0.5)
        before = gateway.metric("iot_gateway_messages_total")
        began = time.monotonic()
        now = time.time()
        for h, hid in enumerate(household_ids(n)):
            for device_id in DEVICES:
                body = payload(device_id, 99, h) | {"ts": now}
                sent = device.publish(topic(hid, device_id), json.dumps(body), qos=1)
                if sent.mid % UNACKED == 0:
                    # paho numbers QoS 1 messages modulo 65,535: far more unacknowledged at
                    # once and a new message takes an old one's number and replaces it.
                    sent.wait_for_publish(60)
        committed, progressed = 0.0, began
        while committed < n * len(DEVICES):
            time.sleep(0.2)
            now_committed = gateway.metric("iot_gateway_messages_total") - before
            if now_committed > committed:
                committed, progressed = now_committed, time.monotonic()
            elif time.monotonic() - progressed > STALLED_S:
                counted = [
                    line
                    for line in gateway.api.get("/metrics").text.splitlines()
                    if line.startswith("iot_gateway_") and "_total" in line
                ]
                raise TimeoutError(
                    f"the gateway committed {committed:.0f} reports, then stalled: {counted}"
                )
        seconds = time.monotonic() - began
    finally:
        device.loop_stop()
        device.disconnect()
    return {"seconds": round(seconds, 1), "msgs_per_s": round(n * len(DEVICES) / seconds)}


def run_child(flag: str, url: str, tree: Path | None, *extra: str) -> dict[str, Any]:
    command = [sys.executable, __file__, flag, url, *extra]
    out = subprocess.run(command, env=tree_env(tree), capture_output=True, text=True)  # noqa: S603
    if out.returncode != 0:
        raise RuntimeError(f"{flag} failed:\n{out.stderr[-4000:]}")
    answer: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return answer


def per_device_kb(rss_mb: float, empty_mb: float, devices: int) -> float:
    return round((rss_mb - empty_mb) * 1024 / devices, 3)


def measure(
    url: str, n: int, days: int, *, tree: Path | None = None, tick: bool = True
) -> dict[str, Any]:
    """The empty gateway, the fill, the restart and the live case on the fresh database `url`."""
    devices = n * len(DEVICES)
    timeout = 120 + n / 1000
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        broker, port = start_broker(folder)
        try:
            gateway = Running(folder, port, url, tree)
            empty = {"startup_s": round(gateway.wait_healthy(timeout), 2)}
            if tick:
                gateway.wait_tick(0)
            empty |= gateway.memory()
            gateway.stop()
            filled = run_child("--fill", url, tree, str(n), str(days))
            gateway = Running(folder, port, url, tree)
            try:
                restart = {"startup_s": round(gateway.wait_healthy(timeout), 2)}
                if tick:
                    gateway.wait_tick(0)
                restart |= gateway.memory()
                ticks = gateway.metric("iot_gateway_rule_tick_seconds_count")
                saved_before = gateway.metric("iot_gateway_rule_state_saved_total")
                live = report_once_more(gateway, port, n)
                live |= {"committed": gateway.memory()}
                cases = [restart, live]
                if tick:
                    gateway.wait_tick(ticks)
                live |= gateway.memory()
                if tick:
                    gateway.wait_saved(saved_before + n)
                    saved = {
                        "saved_since_live": gateway.metric("iot_gateway_rule_state_saved_total")
                    }
                    saved |= gateway.memory()
                    cases.append(saved)
            finally:
                gateway.stop()
        finally:
            broker.terminate()
            broker.wait()
    for case in cases:
        case["kb_per_device"] = per_device_kb(case["rss_mb"], empty["rss_mb"], devices)
    return {
        "households": n,
        "devices": devices,
        "days_of_history": days,
        "empty": empty,
        "fill": filled,
        "restart": restart,
        "live": live,
        **({"saved": cases[2]} if len(cases) > 2 else {}),
    }


async def profile(url: str, top: int = 15) -> dict[str, Any]:
    """Where the memory `Core.prepare()` keeps is allocated: the top lines, and the gateway's
    own lines (the innermost frame in gateway/ of each allocation)."""
    import gc
    import tracemalloc

    # Built before tracing starts: the modules imported and the rules made are not the load.
    from gateway.store.database import upgrade

    core = new_core(url)
    await upgrade(core.db)  # and the migrations' modules
    tracemalloc.start(FRAMES)
    began = time.perf_counter()
    await core.prepare()
    seconds = time.perf_counter() - began
    gc.collect()
    snapshot = tracemalloc.take_snapshot()
    print(f"prepared in {seconds:.1f} s, snapshot taken", file=sys.stderr, flush=True)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    ours: dict[str, int] = {}
    for trace in snapshot.traces:
        frame = next((f for f in reversed(trace.traceback) if "/gateway/" in f.filename), None)
        where = f"{frame.filename.split('/gateway/')[-1]}:{frame.lineno}" if frame else "(other)"
        ours[where] = ours.get(where, 0) + trace.size
    lines = snapshot.statistics("lineno")[:top]
    await core.close()
    mb = 1024 * 1024
    return {
        "prepare_s_under_tracemalloc": round(seconds, 1),
        "traced_mb": round(current / mb, 1),
        "traced_peak_mb": round(peak / mb, 1),
        "process": memory_of(os.getpid()),
        "top_lines": [
            {
                "where": f"{s.traceback[0].filename}:{s.traceback[0].lineno}",
                "mb": round(s.size / mb, 1),
                "blocks": s.count,
            }
            for s in lines
        ],
        "top_gateway_lines": [
            {"where": where, "mb": round(size / mb, 1)}
            for where, size in sorted(ours.items(), key=lambda kv: -kv[1])[:top]
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, nargs="+", default=[2_500, 25_000])
    parser.add_argument("--days", type=int, default=3, help="days of history per device")
    parser.add_argument("--database-url", help="a PostgreSQL server to make databases on")
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--profile", action="store_true", help="tracemalloc at the largest size")
    parser.add_argument(
        "--no-tick", action="store_true", help="do not wait for rules ticks or a state save"
    )
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/memory-<db>.json")
    parser.add_argument(
        "--fill", nargs=3, metavar=("URL", "HOUSEHOLDS", "DAYS"), help=argparse.SUPPRESS
    )
    parser.add_argument("--profile-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fill:
        url, n, days = args.fill
        print(json.dumps(asyncio.run(fill(url, int(n), int(days)))))
        return
    if args.profile_url:
        print(json.dumps(asyncio.run(profile(args.profile_url))))
        return
    trees = named_trees(args.compare_tree)
    result: dict[str, Any] = {
        "benchmark": "memory",
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": "postgresql" if args.database_url else "sqlite",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "parameters": {"households": args.households, "days": args.days, "tick": not args.no_tick},
        "runs": {name: [] for name in trees},
    }
    out = args.out or RESULTS / f"memory-{result['database']}.json"
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.households:
            for name, tree in trees.items():
                with fresh_database(
                    args.database_url, Path(tmp), f"memory-{secrets.token_hex(4)}"
                ) as url:
                    print(f"{name}: {n} households …", file=sys.stderr, flush=True)
                    run = measure(url, n, args.days, tree=tree, tick=not args.no_tick)
                    result["runs"][name].append(run)
                    write(result, out)  # what is measured is kept, whatever comes next
                    print(json.dumps(run), file=sys.stderr, flush=True)
                    if args.profile and n == max(args.households):
                        run["profile"] = run_child("--profile-url", url, tree)
                        write(result, out)
    print(out.read_text())


def write(result: dict[str, Any], out: Path) -> None:
    """The result so far, with the target judged on the largest size measured."""
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    largest = max(result["runs"]["this tree"], key=lambda run: run["households"])
    result["target"] = {
        "kb_per_device": TARGET_KB_PER_DEVICE,
        "at_devices": largest["devices"],
        "met": max(
            largest[case]["kb_per_device"]
            for case in ("restart", "live", "saved")
            if case in largest
        )
        <= TARGET_KB_PER_DEVICE,
    }
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
