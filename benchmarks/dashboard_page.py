"""The dashboard in a real browser at a county's scale (issue 12): how long the overview takes to
be usable, and how long a change takes to reach the screen.

A county of --households homes is written into a fresh SQLite database (benchmarks/dashboard.py's
`fill`: 4 devices each, a few hundred active alerts of every kind, one home with a week of
minute readings), then `iot-gateway run` serves it as a subprocess against a private Mosquitto,
and Debian's Chromium (Playwright, `executable_path`) is signed in as the admin. Measured, from
this process, each --samples times:

- overview: a reload of the page -> the counts and the first page of tiles drawn (the page's own
  JavaScript fetched, parsed and run, `GET /api/overview`, the first paint of 200 tiles);
- live alert: a smoke alarm published (QoS 1) for a home shown as well -> its tile turns to
  alert on the overview without a reload (broker, ingest, commit, the live feed's 250 ms
  coalescing, the page's refetch and render);
- live reading: a power reading published for the charted home -> the new value in its device
  tile on the household page.

    python benchmarks/dashboard_page.py
    python benchmarks/dashboard_page.py --households 10000 --samples 20
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dashboard  # benchmarks/, this folder: the county and its fill
import httpx
import paho.mqtt.client as paho
from broker import free_port, start_broker
from first_sms import gateway_command, wait_healthy
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Page, sync_playwright

from gateway.clock import ManualClock
from tests.browser import CHROMIUM_ARGS, chromium_path
from tests.integration.harness import offline_gateway

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "dashboard-page.json"
TOKEN = secrets.token_urlsafe(24)
PREFIX = f"page{secrets.token_hex(3)}"
TARGET_OVERVIEW_S = 1.0
TARGET_LIVE_S = 1.0


async def fill_county(database_url: str, households: int, seed: int) -> dict[str, Any]:
    """The county as of now (its devices just heard, so no rule finds them silent)."""
    now = datetime.now(UTC).replace(microsecond=0)
    dashboard.NOW = now
    async with offline_gateway(database_url, "page-bench", clock=ManualClock(now)) as gateway:
        return await dashboard.fill(gateway, households, seed, every_min=5)


def gateway_config(folder: Path, broker: int, http: int, database: str) -> Path:
    topics = [f"{PREFIX}/homes/{{household}}/{{device}}/telemetry"]
    path = folder / "gateway.toml"
    path.write_text(
        'log_level = "WARNING"\n'
        f'[mqtt]\nurl = "mqtt://127.0.0.1:{broker}"\nclient_id = "gw-page-bench"\n'
        f"[database]\nurl = {json.dumps(database)}\n"
        f"[http]\nport = {http}\n"
        f'[[sources]]\nname = "native"\nformat = "native"\ntopics = {json.dumps(topics)}\n',
        encoding="utf-8",
    )
    return path


def summary(seconds: list[float]) -> dict[str, Any]:
    ordered = sorted(seconds)
    return {
        "samples": len(ordered),
        "median_ms": round(statistics.median(ordered) * 1000, 1),
        "p90_ms": round(ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
        "min_ms": round(ordered[0] * 1000, 1),
    }


def overview_loads(page: Page, base: str, samples: int, total: int) -> list[float]:
    times = []
    for _ in range(samples):
        page.goto("about:blank")  # a real load each time (the same URL again is a no-op)
        began = time.perf_counter()
        page.goto(f"{base}/#/overview")
        page.wait_for_selector(f"[data-testid=count-total] .n >> text={total}")
        page.wait_for_selector("[data-testid=tiles] li:nth-child(200)")
        times.append(time.perf_counter() - began)
    return times


def well_households(base: str, count: int) -> list[str]:
    answer = httpx.get(
        f"{base}/api/overview",
        params={"status": "well", "limit": count},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    answer.raise_for_status()
    return [h["id"] for h in answer.json()["households"]]


def live_alerts(page: Page, base: str, device: paho.Client, homes: list[str]) -> list[float]:
    page.goto(f"{base}/#/overview")
    page.wait_for_selector("[data-testid=tiles]")
    page.wait_for_selector("[data-testid=live-state][data-state=open]")
    times = []
    for hid in homes:
        payload = json.dumps({"kind": "smoke_detector", "smoke": True})
        began = time.perf_counter()
        device.publish(f"{PREFIX}/homes/{hid}/smoke-1/telemetry", payload, qos=1)
        page.wait_for_selector(f"[data-household='{hid}'][data-status=alert]", timeout=30_000)
        times.append(time.perf_counter() - began)
        page.wait_for_timeout(300)  # one sample's refetch done before the next alarm
    return times


def live_readings(
    page: Page, base: str, device: paho.Client, home: str, samples: int
) -> list[float]:
    page.goto(f"{base}/#/household/{home}")
    cell = "[data-device=power-1] [data-metric=power_w]"
    page.wait_for_selector(cell)
    times = []
    for n in range(samples):
        watts = 1000 + n * 7 + 0.5
        shown = f"{watts:,.1f}"
        payload = json.dumps({"kind": "power_meter", "power_w": watts})
        began = time.perf_counter()
        device.publish(f"{PREFIX}/homes/{home}/power-1/telemetry", payload, qos=1)
        page.wait_for_selector(f"{cell} >> text='{shown}'", timeout=30_000)
        times.append(time.perf_counter() - began)
        page.wait_for_timeout(300)
    return times


def measure(args: argparse.Namespace) -> dict[str, Any]:
    chromium = args.chromium or chromium_path()
    if chromium is None:
        raise SystemExit("no chromium on PATH (Debian: apt install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        database = f"sqlite+aiosqlite:///{folder / 'county.db'}"
        filled = asyncio.run(fill_county(database, args.households, args.seed))
        print(f"filled: {filled}", file=sys.stderr, flush=True)
        broker, port = start_broker(folder)
        http = free_port()
        config = gateway_config(folder, port, http, database)
        log = (folder / "gateway.log").open("w")
        env = dict(os.environ, GATEWAY_ADMIN_TOKEN=TOKEN)
        # Our own CLI and config file: no outside input.
        gateway = subprocess.Popen(  # noqa: S603
            [*gateway_command(), "--config", str(config), "run"], env=env, stderr=log
        )
        device = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
        device.connect("127.0.0.1", port)
        device.loop_start()
        base = f"http://127.0.0.1:{http}"
        try:
            with httpx.Client(base_url=base, timeout=30) as api:
                wait_healthy(api, gateway)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={"width": 1920, "height": 1080})
                page.add_init_script(f"localStorage.setItem('care.token', {json.dumps(TOKEN)})")
                total = filled["planned_counts"]["total"]
                loads = overview_loads(page, base, args.samples, total)
                alerts = live_alerts(page, base, device, well_households(base, args.samples))
                readings = live_readings(page, base, device, filled["charted"], args.samples)
                browser.close()
        finally:
            device.loop_stop()
            device.disconnect()
            gateway.terminate()
            gateway.wait(30)
            log.close()
            broker.terminate()
            broker.wait()
    return {
        "data": filled,
        "overview_usable": summary(loads),
        "live_alert_on_overview": summary(alerts),
        "live_reading_on_household_page": summary(readings),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--chromium", help="the browser to drive (default: chromium on PATH)")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    load = os.getloadavg()
    started = datetime.now(UTC)
    measured = measure(args)
    result = {
        "benchmark": "dashboard_page",
        "started": started.isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "parameters": {"households": args.households, "samples": args.samples},
        **measured,
        "target": {
            "overview_usable_under_s": TARGET_OVERVIEW_S,
            "overview_met": measured["overview_usable"]["median_ms"] / 1000 < TARGET_OVERVIEW_S,
            "live_under_s": TARGET_LIVE_S,
            "live_met": max(
                measured["live_alert_on_overview"]["median_ms"],
                measured["live_reading_on_household_page"]["median_ms"],
            )
            / 1000
            < TARGET_LIVE_S,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name in ("overview_usable", "live_alert_on_overview", "live_reading_on_household_page"):
        print(f"{name:34} {result[name]}")
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
