"""Three `iot-gateway run` processes on one shared subscription and one PostgreSQL database
(DESIGN.md §9, issue 13 item 7): Mosquitto hands each process messages of every household,
one by one, and one process is killed in the middle of the stream.

The stream runs on event time (`--clock event`): 16 hours of 60 homes in seconds. Every home
has a water meter; some have a fire, some an elder who presses the call button and cancels it
ten seconds later (the cancel mostly reaching another process), and some an elder who stops
using water at 02:00. Checked: every reading stored once, one alert per incident and no other,
the calls withdrawn, and the homes without water alerted twelve hours after the last use,
though no process saw all of a home's readings.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from gateway.care.households import HouseholdIn, create_household
from gateway.models import AlertStatus
from gateway.store.tables import alerts, detector_members, readings
from tests.integration.harness import HOUSEHOLD, Publisher
from tests.integration.test_service import AUTH, Service

pytestmark = [pytest.mark.postgres, pytest.mark.mqtt]

# 00:00 in Asia/Shanghai: the homes without water are alerted at 14:00, outside night hours.
T0 = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)
HOMES = 60
FIRES = range(0, 6)
CALLS = range(6, 12)
DRY = range(12, 18)
"""Homes (by number) whose elder stops using water at 02:00."""
LAST_USE = timedelta(hours=2)
END = timedelta(hours=16)
FIRST_PART = timedelta(minutes=45)
SLICE = timedelta(minutes=30)
"""The stream is published in two parts; a process is killed while the first drains. (Its
messages wait at the broker until it is back: the first part is short in event time, so no
meter looks silent meanwhile.)"""


@pytest.fixture
def shared_subscriptions(mqtt_broker_kind: str, missing_service: Callable[[str], NoReturn]) -> None:
    """The session's broker hands a shared subscription's messages out (Mosquitto does)."""
    if mqtt_broker_kind == "amqtt":
        missing_service("shared subscriptions need Mosquitto (amqtt has no $share)")


def home(n: int) -> str:
    return f"H{n:03}"


def stream(prefix: str, start: timedelta, end: timedelta) -> list[tuple[str, dict[str, Any]]]:
    """Messages with event times in [start, end), in time order. Meters report every 5 min for
    the first part and every 15 min after; water is used every half hour."""
    out: list[tuple[datetime, str, dict[str, Any]]] = []
    for n in range(HOMES):
        base = f"{prefix}/homes/{home(n)}"
        at = timedelta(0)
        total = 1000.0 + n
        while at < END:
            half_hour = at % timedelta(minutes=30) == timedelta(0)
            if half_hour and at > timedelta(0) and (n not in DRY or at <= LAST_USE):
                total += 20.0
            if start <= at < end:
                ts = T0 + at
                body = {"kind": "water_meter", "water_total_l": total, "ts": ts.timestamp()}
                out.append((ts, f"{base}/water-1/telemetry", body))
            at += timedelta(minutes=5 if at < FIRST_PART else 15)
        incident = T0 + timedelta(hours=5, minutes=n % 7)
        if n in FIRES and start <= incident - T0 < end:
            for repeat in range(2):  # the detector repeats itself: still one alert
                ts = incident + timedelta(seconds=repeat * 30)
                body = {"kind": "smoke_detector", "smoke": True, "ts": ts.timestamp()}
                out.append((ts, f"{base}/smoke-1/telemetry", body))
        if n in CALLS and start <= incident - T0 < end:
            for event, after in (("sos", 0), ("cancel", 10)):
                ts = incident + timedelta(seconds=after)
                out.append((ts, f"{base}/btn-1/event", {"event": event, "ts": ts.timestamp()}))
    out.sort(key=lambda m: m[0])
    return [(topic, body) for _, topic, body in out]


def publish_all(publisher: Publisher, messages: list[tuple[str, dict[str, Any]]]) -> None:
    """QoS 1, as fast as the broker takes them."""
    sent = [publisher.client.publish(t, json.dumps(b), qos=1) for t, b in messages]
    for info in sent:
        info.wait_for_publish(30)


async def count(db: AsyncEngine, query: sa.Select[Any]) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(query) or 0)


async def wait_for_readings(db: AsyncEngine, expected: int, services: list[Service]) -> None:
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline:
        stored = await count(db, sa.select(sa.func.count()).select_from(readings))
        if stored >= expected:
            return
        await asyncio.sleep(0.2)
    logs = "\n".join(s.log.read_text()[-3000:] for s in services)
    raise AssertionError(f"{stored} of {expected} readings stored\n{logs}")


async def test_three_processes_share_the_stream_and_one_dies_midway(
    tmp_path: Path,
    mqtt_url: str,
    postgres_url: str,
    unique_id: str,
    shared_subscriptions: None,
) -> None:
    db = create_async_engine(postgres_url)
    async with db.begin() as conn:
        for n in range(HOMES):
            body = {**HOUSEHOLD, "id": home(n)}
            await create_household(conn, HouseholdIn.model_validate(body), T0)
    services = [
        Service(
            tmp_path,
            mqtt_url,
            unique_id,
            {},
            args=["--clock", "event", "--workers", "1"],  # one process each: a kill kills it
            database_url=postgres_url,
            name=name,
            mqtt_extra=f'shared_group = "g{unique_id}"',
        )
        for name in ("a", "b", "c")
    ]
    publisher = Publisher(mqtt_url)
    try:
        for service in services:
            service.start()
        await asyncio.sleep(1.0)  # all three subscribed before anything is published
        first = stream(unique_id, timedelta(0), FIRST_PART)
        published = len(first)
        publishing = asyncio.create_task(asyncio.to_thread(publish_all, publisher, first))
        stored = 0
        while stored < len(first) // 4:
            stored = await count(db, sa.select(sa.func.count()).select_from(readings))
            await asyncio.sleep(0.005)
        services[1].kill()  # mid-stream: batches in hand, messages queued for it at the broker
        killed_at = await count(db, sa.select(sa.func.count()).select_from(readings))
        assert killed_at < len(first)
        await publishing
        services[1].start()  # its session's messages come to it again
        await wait_for_readings(db, len(first), services)
        # The rest in slices of half an hour, each stored before the next: on event time the
        # detectors' clock is the newest reading's, and no process may run an hour ahead of
        # another, or a meter whose readings wait in the slower one would look silent.
        at = FIRST_PART
        while at < END:
            part = stream(unique_id, at, at + SLICE)
            await asyncio.to_thread(publish_all, publisher, part)
            published += len(part)
            await wait_for_readings(db, published, services)
            at += SLICE

        async def opened() -> list[dict[str, Any]]:
            async with db.connect() as conn:
                rows = await conn.execute(sa.select(alerts).order_by(alerts.c.household_id))
                return [dict(r._mapping) for r in rows]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = await opened()
            if sum(a["rule_id"] == "no_water_use" for a in found) >= len(DRY):
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # anything more that would (wrongly) open does so now
        found = await opened()
        stored = await count(db, sa.select(sa.func.count()).select_from(readings))
    finally:
        publisher.close()
        for service in services:
            service.stop()
        await db.dispose()

    assert stored == published  # each once: the table's key forbids a second
    by_rule: dict[str, list[dict[str, Any]]] = {}
    for alert in found:
        by_rule.setdefault(alert["rule_id"], []).append(alert)
    for rule in ("device_offline", "water_leak"):
        for a in by_rule.get(rule, [])[:5]:
            print(
                rule,
                a["household_id"],
                a["device_id"],
                a["opened_at"] - T0,
                a["summary"],
                a["evidence"],
            )
    assert sorted(by_rule) == ["call_button", "no_water_use", "smoke_alarm"], by_rule.keys()
    assert [a["household_id"] for a in by_rule["smoke_alarm"]] == [home(n) for n in FIRES]
    assert all(a["occurrences"] == 2 for a in by_rule["smoke_alarm"])
    assert [a["household_id"] for a in by_rule["call_button"]] == [home(n) for n in CALLS]
    assert all(a["status"] == AlertStatus.RESOLVED.value for a in by_rule["call_button"])
    dry = by_rule["no_water_use"]
    assert [a["household_id"] for a in dry] == [home(n) for n in DRY]
    for alert in dry:
        assert alert["opened_at"] == T0 + LAST_USE + timedelta(hours=12), alert


async def test_run_with_workers_shares_the_load_and_stops_them_all(
    tmp_path: Path,
    mqtt_url: str,
    postgres_url: str,
    unique_id: str,
    shared_subscriptions: None,
) -> None:
    """`iot-gateway run --workers 2`: two worker processes on one port and one shared
    subscription, each holding its share of the partitions; a stop stops them both."""
    service = Service(
        tmp_path, mqtt_url, unique_id, {}, args=["--workers", "2"], database_url=postgres_url
    )
    db = create_async_engine(postgres_url)
    publisher = Publisher(mqtt_url)
    try:
        service.start()
        created = await asyncio.to_thread(
            httpx.post, f"{service.url}/api/households", json=HOUSEHOLD, headers=AUTH
        )
        assert created.status_code == 201, created.text

        async def members() -> list[str]:
            async with db.connect() as conn:
                rows = await conn.scalars(sa.select(detector_members.c.owner))
                return sorted(rows)

        deadline = time.monotonic() + 30
        while len(await members()) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert await members() == [f"svc-{unique_id}-gateway-w0", f"svc-{unique_id}-gateway-w1"]
        topic = f"{unique_id}/homes/H001/smoke-1/telemetry"
        publisher.send(topic, {"kind": "smoke_detector", "smoke": True})
        deadline = time.monotonic() + 10
        found: list[dict[str, Any]] = []
        while not found and time.monotonic() < deadline:
            response = await asyncio.to_thread(httpx.get, f"{service.url}/api/alerts", headers=AUTH)
            found = response.json()
            await asyncio.sleep(0.1)
        assert [a["rule"] for a in found] == ["smoke_alarm"]
        service.stop()
        assert service.process is not None
        assert service.process.returncode == 0, service.log.read_text()
        assert await members() == []  # both resigned their partitions in order
        log = service.log.read_text()
        assert "starting 2 workers" in log
        assert "worker 0: starting" in log
        assert "worker 1: starting" in log
    finally:
        publisher.close()
        service.stop()
        await db.dispose()


def test_run_with_workers_on_sqlite_says_why_it_runs_one(
    tmp_path: Path, mqtt_url: str, unique_id: str
) -> None:
    service = Service(tmp_path, mqtt_url, unique_id, {}, args=["--workers", "2"])
    try:
        service.start()
        assert httpx.get(f"{service.url}/api/health", timeout=5).status_code == 200
    finally:
        service.stop()
    log = service.log.read_text()
    assert "SQLite has a single writer: running one gateway process" in log
    assert "worker 0" not in log


def running(pid: int) -> bool:
    """Whether the process runs (a zombie nobody reaped has stopped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_stop_when_their_supervisor_is_killed(
    tmp_path: Path,
    mqtt_url: str,
    postgres_url: str,
    unique_id: str,
    shared_subscriptions: None,
) -> None:
    """Killed outright, the supervisor cannot pass the stop on: its workers notice and stop,
    rather than run on unsupervised (and a new supervisor start a second set)."""
    service = Service(
        tmp_path, mqtt_url, unique_id, {}, args=["--workers", "2"], database_url=postgres_url
    )
    try:
        service.start()
        assert service.process is not None
        found = subprocess.run(
            ["pgrep", "-P", str(service.process.pid)], capture_output=True, text=True
        )
        workers = [int(pid) for pid in found.stdout.split()]
        assert len(workers) == 2
        service.kill()
        # Each stops in order (its batch stored, its partitions handed back): seconds, but
        # far more on a machine as loaded as CI's can be.
        deadline = time.monotonic() + 90
        while any(running(pid) for pid in workers):
            assert time.monotonic() < deadline, "workers still running without a supervisor"
            time.sleep(0.2)
    finally:
        service.stop()
