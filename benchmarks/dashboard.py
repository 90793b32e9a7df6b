"""The dashboard's read routes at a county's scale (issue 12): the overview, the alert queue and a
household's charts.

A county of --households homes (default 10,000; 10 townships × 20 villages, 1 % left the
programme) with 4 devices each (the `devices` rows and their `device_state`), written straight
into a fresh database; 2 resolved alerts per home on file, and a few hundred active ones of mixed
rules and severities: safety alerts, inactivity alerts past their check-in call, check-in calls
under way (the escalation and the call's notification as the escalator writes them),
device_offline and low_battery. One household has a week of readings every minute (water meter,
power meter: power and energy) and vitals every 4 h.

Then the API in process (httpx ASGITransport, no socket, no broker), --requests each, medians:
`GET /api/overview` (first page of 200 with the counts) as admin and as an operator of one
township, with a village and status=alert; a deep page; `GET /api/alerts?active=true&order=queue`;
`GET /api/households/{id}/series?range=7d` and `24h`. The status counts the overview reports are
checked against those planned.

    python benchmarks/dashboard.py
    python benchmarks/dashboard.py --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))  # when imported by the tests, not run
from databases import create_database, drop_database  # noqa: E402  (benchmarks/, this folder)

from gateway.alerts.policy import resolve_policy  # noqa: E402
from gateway.app import Gateway  # noqa: E402
from gateway.clock import ManualClock  # noqa: E402
from gateway.models import DeviceKind, Metric, Reading, Severity  # noqa: E402
from gateway.store.readings import insert_readings, update_device_state  # noqa: E402
from gateway.store.tables import (  # noqa: E402
    alerts,
    device_state,
    devices,
    escalations,
    households,
    notifications,
)
from tests.integration.harness import api_client, offline_gateway  # noqa: E402

TOKEN = secrets.token_urlsafe(24)
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
TARGET_OVERVIEW_S = 1.0
RESULTS = ROOT / "benchmarks" / "results"
COUNTY = "大方县"
TOWNSHIPS = ["城关镇", "石门镇", "桃花镇", "新塘镇", "龙泉乡", "白水乡", "青山镇", "河口镇"]
TOWNSHIPS += ["杨柳乡", "金竹乡", "马头镇", "高桥镇"]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
GIVEN = ["秀英", "桂英", "玉兰", "秀兰", "桂兰", "建国", "国华", "德明", "志强", "福生"]
FITTED = [
    ("smoke-1", DeviceKind.SMOKE_DETECTOR, [("smoke", 0.0), ("battery_pct", 80.0)]),
    ("water-1", DeviceKind.WATER_METER, [("water_total_l", 1000.0)]),
    ("power-1", DeviceKind.POWER_METER, [("power_w", 120.0), ("energy_total_kwh", 500.0)]),
    ("btn-1", DeviceKind.CALL_BUTTON, [("battery_pct", 90.0)]),
]
# Active alerts per 10,000 homes: (kind, rule, severity, device, how many). Kinds: "alert",
# "past_checkin" (inactivity, the elder did not answer: the visitor is told), "checkin" (the
# call to the elder under way), "offline", "battery".
ACTIVE_PLAN = [
    ("alert", "smoke_alarm", Severity.CRITICAL, "smoke-1", 15),
    ("alert", "call_button", Severity.CRITICAL, "btn-1", 15),
    ("alert", "water_leak", Severity.HIGH, "water-1", 20),
    ("alert", "abnormal_vitals", Severity.HIGH, "household", 30),
    ("alert", "appliance_left_on", Severity.MEDIUM, "power-1", 20),
    ("past_checkin", "no_water_use", Severity.HIGH, "household", 30),
    ("checkin", "missed_routine", Severity.HIGH, "household", 40),
    ("offline", "device_offline", Severity.MEDIUM, "water-1", 150),
    ("battery", "low_battery", Severity.LOW, "smoke-1", 80),
]
STATUS_OF_KIND = {
    "alert": "alert",
    "past_checkin": "alert",
    "checkin": "checkin",
    "offline": "offline",
    "battery": "low_battery",
}
STATUS_ORDER = ["alert", "checkin", "offline", "low_battery", "well"]


def county(n: int, rng: random.Random) -> list[dict[str, Any]]:
    towns = TOWNSHIPS[:10]
    villages = {t: [f"{t[:2]}{k + 1}村" for k in range(20)] for t in towns}
    rows = []
    for k in range(n):
        town = towns[k % len(towns)]
        rows.append(
            {
                "id": f"H{k + 1:05d}",
                "elder_name": rng.choice(SURNAMES) + rng.choice(GIVEN),
                "county": COUNTY,
                "township": town,
                "village": rng.choice(villages[town]),
                "address_detail": f"{rng.randint(1, 12)}组{rng.randint(1, 60)}号",
                "details": {},
                "risk": "high" if rng.random() < 0.1 else "normal",
                "registered_on": date(2025, 1, 1),
                # 1 % left the programme: the overview leaves them out.
                "left_on": date(2026, 6, 1) if k % 100 == 99 else None,
                "created_at": NOW,
                "updated_at": NOW,
            }
        )
    return rows


async def insert_chunks(conn: Any, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for k in range(0, len(rows), 5000):
        await conn.execute(sa.insert(table), rows[k : k + 5000])


def fitted_rows(homes: list[dict[str, Any]], rng: random.Random) -> tuple[list[Any], list[Any]]:
    fitted, states = [], []
    for h in homes:
        for device, kind, metrics in FITTED:
            seen = NOW - timedelta(seconds=rng.randrange(3600))
            fitted.append(
                {
                    "household_id": h["id"],
                    "device_id": device,
                    "kind": kind.value,
                    "source": "native",
                    "review": "confirmed",
                    "registered_at": NOW - timedelta(days=300),
                    "first_seen": NOW - timedelta(days=300),
                    "last_seen": seen,
                }
            )
            states.extend(
                {
                    "household_id": h["id"],
                    "device_id": device,
                    "metric": metric,
                    "value_num": value,
                    "ts": seen,
                    "received_at": seen,
                }
                for metric, value in metrics
            )
    return fitted, states


def alert_row(
    alert_id: int, hid: str, rule: str, severity: Severity, device: str, opened: datetime, **kw: Any
) -> dict[str, Any]:
    return {
        "id": alert_id,
        "household_id": hid,
        "device_id": device,
        "rule_id": rule,
        "severity": severity.value,
        "status": kw.pop("status", "notified"),
        "summary": rule,
        "evidence": {},
        "opened_at": opened,
        "last_seen_at": opened,
        "updated_at": opened,
        "resolved_at": kw.pop("resolved_at", None),
        "resolved_by": kw.pop("resolved_by", None),
    }


def alert_history(
    homes: list[dict[str, Any]], rng: random.Random
) -> tuple[list[Any], list[Any], list[Any], dict[str, str]]:
    """Resolved alerts (2 a home), the active ones with their escalations and first messages,
    and each home's planned status."""
    rows, escalating, sent = [], [], []
    next_id = 1
    for h in homes:
        for _ in range(2):
            kind, rule, severity, device, _n = rng.choice(ACTIVE_PLAN)
            opened = NOW - timedelta(days=rng.uniform(1, 300))
            rows.append(
                alert_row(
                    next_id,
                    h["id"],
                    rule,
                    severity,
                    device,
                    opened,
                    status="resolved",
                    resolved_at=opened + timedelta(minutes=30),
                    resolved_by="探访员",
                )
            )
            next_id += 1
    scale = len(homes) / 10_000
    kinds_of: dict[str, set[str]] = {}
    taken: set[tuple[str, str, str]] = set()
    for kind, rule, severity, device, per_10k in ACTIVE_PLAN:
        for _ in range(max(1, round(per_10k * scale))):
            while True:
                h = rng.choice(homes)
                if (h["id"], rule, device) not in taken:
                    break
            taken.add((h["id"], rule, device))
            opened = NOW - timedelta(minutes=rng.uniform(1, 600))
            rows.append(alert_row(next_id, h["id"], rule, severity, device, opened))
            policy = resolve_policy(severity, rule, {}).to_json()
            escalating.append(
                {
                    "alert_id": next_id,
                    "policy": policy,
                    "state": "running",
                    "step": 1 if kind == "checkin" else 2,
                    "rounds": 0,
                    "runs": 1 if kind == "checkin" else 2,
                    "next_at": NOW + timedelta(minutes=3),
                    "started_at": opened,
                    "updated_at": opened,
                }
            )
            sent.append(
                {
                    "alert_id": next_id,
                    "channel": "voice" if kind == "checkin" else "sms",
                    "recipient_role": "elder" if kind == "checkin" else "visitor",
                    "recipient_name": h["elder_name"],
                    "recipient_phone": "+8613800000000",
                    "reason": "step 1",
                    "body": "…",
                    "status": "sent",
                    "created_at": opened,
                    "step": 0 if kind == "checkin" else 1,
                    "run": 1 if kind == "checkin" else 2,
                    "purpose": "checkin" if kind == "checkin" else "alert",
                }
            )
            if h["left_on"] is None:
                kinds_of.setdefault(h["id"], set()).add(STATUS_OF_KIND[kind])
            next_id += 1
    planned = {
        h["id"]: next((s for s in STATUS_ORDER if s in kinds_of.get(h["id"], ())), "well")
        for h in homes
        if h["left_on"] is None
    }
    return rows, escalating, sent, planned


def week_of_readings(hid: str, rng: random.Random, every_min: int = 1) -> list[Reading]:
    """A week (and an hour before it) of minute readings from the water and power meters, and
    vitals every 4 hours."""
    out: list[Reading] = []
    water, energy = 183_402.5, 5321.44
    start = NOW - timedelta(days=7, hours=1)
    for minute in range(0, int((NOW - start).total_seconds() // 60), every_min):
        ts = start + timedelta(minutes=minute)
        hour = (ts.hour + 8) % 24  # Shanghai
        awake = 6 <= hour < 22
        water += rng.uniform(0, 3) if awake and rng.random() < 0.1 else 0.0
        power = rng.uniform(300, 1800) if awake and rng.random() < 0.2 else rng.uniform(40, 80)
        energy += power / 60 / 1000
        out.append(Reading(hid, "water-1", None, Metric.WATER_TOTAL_L, water, "L", ts))
        out.append(Reading(hid, "power-1", None, Metric.POWER_W, power, "W", ts))
        out.append(Reading(hid, "power-1", None, Metric.ENERGY_TOTAL_KWH, energy, "kWh", ts))
        if minute % 240 == 0:
            for metric, value in [
                (Metric.HEART_RATE_BPM, rng.randint(60, 90)),
                (Metric.SPO2_PCT, rng.randint(94, 99)),
                (Metric.BP_SYSTOLIC_MMHG, rng.randint(115, 150)),
                (Metric.BP_DIASTOLIC_MMHG, rng.randint(70, 95)),
                (Metric.BODY_TEMP_C, round(rng.uniform(36.2, 37.2), 1)),
            ]:
                out.append(Reading(hid, "hm-1", None, metric, value, None, ts))
    return out


async def fill(gateway: Gateway, n: int, seed: int, every_min: int = 1) -> dict[str, Any]:
    """The county written straight into the tables; what was planned."""
    rng = random.Random(seed)
    began = time.perf_counter()
    homes = county(n, rng)
    fitted, states = fitted_rows(homes, rng)
    history, escalating, sent, planned = alert_history(homes, rng)
    week = week_of_readings(homes[0]["id"], rng, every_min)
    async with gateway.db.begin() as conn:
        await insert_chunks(conn, households, homes)
        await insert_chunks(conn, devices, fitted)
        await insert_chunks(conn, device_state, states)
        await insert_chunks(conn, alerts, history)
        await insert_chunks(conn, escalations, escalating)
        await insert_chunks(conn, notifications, sent)
        for k in range(0, len(week), 5000):
            await insert_readings(conn, week[k : k + 5000], NOW)
            await update_device_state(conn, week[k : k + 5000], NOW)
    if gateway.db.dialect.name == "postgresql":
        async with gateway.db.connect() as conn:
            await conn.execute(sa.text("COMMIT"))
            await conn.execute(sa.text("ANALYZE"))
    counts = Counter(planned.values())
    return {
        "households": n,
        "in_programme": len(planned),
        "devices": len(fitted),
        "device_state_rows": len(states),
        "alerts_on_file": len(history),
        "active_alerts": len(escalating),
        "readings_of_the_charted_home": len(week),
        "planned_counts": {"total": len(planned)} | {s: counts.get(s, 0) for s in STATUS_ORDER},
        "fill_s": round(time.perf_counter() - began, 2),
        "charted": homes[0]["id"],
        "township": homes[0]["township"],
        "village": homes[0]["village"],
    }


async def latencies(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], requests: int
) -> dict[str, Any]:
    times = []
    for _ in range(requests):
        began = time.perf_counter()
        response = await client.get(url, headers=headers)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    body = response.json()
    seen = {"rows": len(body)} if isinstance(body, list) else {}
    if isinstance(body, dict) and "total" in body:
        seen = {"total": body["total"], "rows": len(body["households"])}
    return seen | {
        "requests": requests,
        "median_ms": round(statistics.median(times) * 1000, 1),
        "max_ms": round(max(times) * 1000, 1),
        "min_ms": round(min(times) * 1000, 1),
        "bytes": len(response.content),
    }


async def measure(
    database_url: str, households_n: int, requests: int, seed: int, every_min: int = 1
) -> dict[str, Any]:
    """Fill the database `database_url` names and time the routes (the charted home's meters
    read every `every_min` minutes)."""
    async with offline_gateway(database_url, "bench", clock=ManualClock(NOW)) as gw:
        filled = await fill(gw, households_n, seed, every_min)
        print(f"filled: {filled}", file=sys.stderr, flush=True)
        out: dict[str, Any] = {"data": filled, "queries": {}}
        async with api_client(gw, TOKEN) as client:
            created = await client.post(
                "/api/accounts",
                json={"name": "镇操作员", "role": "operator", "township": filled["township"]},
                headers=ADMIN,
            )
            operator = {"Authorization": f"Bearer {created.json()['token']}"}
            counts = (await client.get("/api/overview", headers=ADMIN)).json()["counts"]
            out["overview_counts"] = counts
            village = f"village={filled['village']}"
            charted = f"/api/households/{filled['charted']}/series"
            cases = {
                "overview_admin": ("/api/overview", ADMIN),
                "overview_operator": ("/api/overview", operator),
                "overview_operator_village_alert": (
                    f"/api/overview?{village}&status=alert",
                    operator,
                ),
                "overview_admin_village_alert": (
                    f"/api/overview?township={filled['township']}&{village}&status=alert",
                    ADMIN,
                ),
                "overview_admin_status_alert": ("/api/overview?status=alert", ADMIN),
                "overview_admin_deep_page": (
                    f"/api/overview?offset={households_n // 2}",
                    ADMIN,
                ),
                "alerts_queue_admin": ("/api/alerts?active=true&order=queue", ADMIN),
                "series_7d": (f"{charted}?range=7d", ADMIN),
                "series_24h": (f"{charted}?range=24h", ADMIN),
            }
            for name, (url, headers) in cases.items():
                print(f"  {name} …", file=sys.stderr, flush=True)
                out["queries"][name] = await latencies(client, url, headers, requests)
    return out


@asynccontextmanager
async def fresh_database(url: str | None, folder: Path) -> AsyncIterator[str]:
    if url is None:
        yield f"sqlite+aiosqlite:///{folder / f'bench-{secrets.token_hex(4)}.db'}"
        return
    database = await create_database(url)
    try:
        yield database
    finally:
        await drop_database(database)


async def main(args: argparse.Namespace) -> dict[str, Any]:
    load = os.getloadavg()
    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(args.database_url, Path(tmp)) as url:
            measured = await measure(url, args.households, args.requests, args.seed)
    planned, reported = measured["data"]["planned_counts"], measured["overview_counts"]
    assert reported == planned, (reported, planned)
    overview_worst_ms = max(
        q["median_ms"] for k, q in measured["queries"].items() if k.startswith("overview")
    )
    return {
        "benchmark": "dashboard",
        "started": started.isoformat(timespec="seconds"),
        "database": "sqlite" if args.database_url is None else "postgresql",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_start": [round(x, 2) for x in load],
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "parameters": {"households": args.households, "requests": args.requests, "seed": args.seed},
        **measured,
        "target": {
            "overview_under_s": TARGET_OVERVIEW_S,
            "overview_met": overview_worst_ms / 1000 < TARGET_OVERVIEW_S,
        },
    }


def table(result: dict[str, Any]) -> str:
    lines = [f"{'what':36} {'median':>10}  note"]
    for name, q in result["queries"].items():
        rows = f", {q['rows']} rows" if "rows" in q else ""
        rows += f" of {q['total']}" if "total" in q else ""
        lines.append(
            f"{name:36} {q['median_ms']:>7.1f} ms  max {q['max_ms']} ms, {q['bytes']:,} B{rows}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--database-url", help="a PostgreSQL server: a fresh database on it")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/dashboard-<db>.json")
    args = parser.parse_args()
    result = asyncio.run(main(args))
    out = args.out or RESULTS / f"dashboard-{result['database']}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(table(result))
    print(f"overview under {TARGET_OVERVIEW_S:g} s: {result['target']['overview_met']}")
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}")
