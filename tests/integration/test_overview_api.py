"""GET /api/overview: each household's status from its alerts and escalation, counts, the
control room's order, filters, pages and scope; and the alert queue's order.

A real database and the gateway's own alert book and escalator: check-in calls are made by the
escalation itself, not written by hand.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.api.auth import Principal
from gateway.api.scope import households_in_scope, in_scope
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.models import Finding, FindingAction, Severity
from gateway.store.tables import alerts, devices, escalations, households
from tests.integration.harness import api_client, isolated_settings, register

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)  # noon in Shanghai: no quiet hours
TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def home(hid: str, name: str, village: str = "柳树村", township: str = "白石镇") -> dict[str, Any]:
    n = int(hid[1:])
    return {
        "id": hid,
        "elder": {"name": name, "phone": f"+86138000000{n:02d}"},
        "address": {"county": "青山县", "township": township, "village": village, "detail": "1号"},
        "visitors": [{"name": "李敏" if n % 2 else "赵磊", "phone": f"+861390000000{n % 2}"}],
        "relatives": [{"name": "王强", "phone": f"+86137000000{n:02d}", "relation": "son"}],
    }


HOMES = [
    home("H001", "张桂兰"),
    home("H002", "王秀英"),
    home("H003", "刘玉兰", village="松林村"),
    home("H004", "陈金凤"),
    home("H005", "杨淑珍"),
    home("H006", "黄翠花"),
    home("H007", "赵兰英"),
    home("H008", "吴素珍"),
    home("H009", "周桂芳", township="河口镇", village="河口村"),
    home("H010", "徐秀兰"),
]


def finding(rule: str, severity: Severity, household: str, at: datetime, device: str) -> Finding:
    return Finding(rule, household, device, severity, FindingAction.OPEN, at, rule)


@pytest.fixture
async def gateway(database_url: str, unique_id: str) -> AsyncIterator[Gateway]:
    # A public URL: the gateway can hear keypresses, so inactivity alerts call the elder first.
    settings = isolated_settings(
        "mqtt://127.0.0.1:1",
        database_url,
        unique_id,
        public_url="https://care.example.org",
        escalation={"batch_window_s": 0},
    )
    clock = ManualClock(T0)
    gw = Gateway(settings, clock=clock, notifier=ConsoleNotifier(io.StringIO()))
    await gw.prepare()
    for body in HOMES:
        await register(gw, body)

    async def open_(rule: str, severity: Severity, household: str, device: str) -> int:
        async with gw.db.begin() as conn:
            applied = await gw.book.apply(
                conn, [finding(rule, severity, household, clock.now(), device)]
            )
        (alert_id,) = applied.opened
        return alert_id

    # H004's inactivity alert: the elder did not answer the check-in call within 3 minutes,
    # so its visitor has been told: an alert like any other.
    await open_("no_water_use", Severity.HIGH, "H004", "household")
    clock.set(T0 + timedelta(minutes=4))
    await gw.escalator.run_due()
    # H010's call button, older than H001's smoke alarm: both critical, H010 first.
    await open_("call_button", Severity.CRITICAL, "H010", "btn-1")
    clock.set(T0 + timedelta(minutes=5))
    await open_("smoke_alarm", Severity.CRITICAL, "H001", "smoke-1")
    await open_("low_battery", Severity.LOW, "H001", "smoke-1")
    await open_("water_leak", Severity.HIGH, "H002", "leak-1")
    # H003: the check-in call to the elder is under way.
    await open_("no_water_use", Severity.HIGH, "H003", "household")
    await open_("device_offline", Severity.MEDIUM, "H005", "water-1")
    await open_("device_offline", Severity.MEDIUM, "H005", "power-1")
    await open_("low_battery", Severity.LOW, "H006", "smoke-1")
    resolved = await open_("smoke_alarm", Severity.CRITICAL, "H007", "smoke-1")
    await gw.book.resolve(resolved, "李敏", "误报，做饭油烟")
    # H008 left the programme yesterday: its open alert no longer puts it on the overview.
    await open_("smoke_alarm", Severity.CRITICAL, "H008", "smoke-1")
    async with gw.db.begin() as conn:
        await conn.execute(
            sa.update(households)
            .where(households.c.id == "H008")
            .values(left_on=date(2026, 11, 29))
        )
        await conn.execute(
            sa.insert(devices),
            [
                {
                    "household_id": "H001",
                    "device_id": device,
                    "kind": kind,
                    "review": "confirmed",
                    "last_seen": seen,
                }
                for device, kind, seen in [
                    ("smoke-1", "smoke_detector", T0 - timedelta(hours=2)),
                    ("water-1", "water_meter", T0 - timedelta(minutes=1)),
                    ("btn-1", "call_button", None),
                ]
            ],
        )
    yield gw
    await gw.close()


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(gateway, TOKEN) as c:
        yield c


async def get(client: httpx.AsyncClient, headers: dict[str, str] = ADMIN, **params: Any) -> Any:
    response = await client.get("/api/overview", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def account(client: httpx.AsyncClient, body: dict[str, str]) -> dict[str, str]:
    created = await client.post("/api/accounts", json=body, headers=ADMIN)
    assert created.status_code == 201, created.text
    return {"Authorization": f"Bearer {created.json()['token']}"}


async def test_each_household_has_the_first_status_that_applies_in_the_control_rooms_order(
    client: httpx.AsyncClient,
):
    found = await get(client)
    assert [(h["id"], h["status"], h["worst_severity"]) for h in found["households"]] == [
        ("H010", "alert", "critical"),  # critical, oldest first
        ("H001", "alert", "critical"),  # its low battery does not matter beside the smoke
        ("H004", "alert", "high"),  # the elder did not answer: past the check-in step
        ("H002", "alert", "high"),
        ("H003", "checkin", "high"),
        ("H005", "offline", "medium"),
        ("H006", "low_battery", "low"),
        ("H007", "well", None),  # its smoke alarm is resolved
        ("H009", "well", None),
    ]
    assert "H008" not in {h["id"] for h in found["households"]}, "left the programme"
    assert found["counts"] == {
        "total": 9,
        "well": 2,
        "alert": 4,
        "checkin": 1,
        "offline": 1,
        "low_battery": 1,
    }
    assert found["total"] == 9
    assert found["areas"] == [
        {"township": "河口镇", "village": "河口村", "households": 1},
        {"township": "白石镇", "village": "松林村", "households": 1},
        {"township": "白石镇", "village": "柳树村", "households": 7},
    ]


async def test_a_tile_counts_alerts_devices_and_when_a_device_was_last_heard(
    client: httpx.AsyncClient,
):
    tiles = {h["id"]: h for h in (await get(client))["households"]}
    assert tiles["H001"] == {
        "id": "H001",
        "elder_name": "张桂兰",
        "township": "白石镇",
        "village": "柳树村",
        "status": "alert",
        "worst_severity": "critical",
        "active_alerts": 2,
        "devices": 3,
        "devices_offline": 0,
        "devices_low_battery": 1,
        "last_seen": "2026-11-30T03:59:00Z",
        "risk": "normal",
    }
    assert (tiles["H005"]["devices_offline"], tiles["H005"]["active_alerts"]) == (2, 2)
    assert (tiles["H009"]["devices"], tiles["H009"]["last_seen"]) == (0, None)


async def test_filters_narrow_the_rows_and_the_counts_but_not_the_areas(
    client: httpx.AsyncClient,
):
    village = await get(client, township="白石镇", village="柳树村")
    assert village["counts"]["total"] == 7
    assert village["counts"]["checkin"] == 0, "H003 lives in 松林村"
    assert len(village["areas"]) == 3
    alerts = await get(client, township="白石镇", status="alert")
    assert [h["id"] for h in alerts["households"]] == ["H010", "H001", "H004", "H002"]
    assert alerts["total"] == 4
    assert alerts["counts"]["total"] == 8, "the counts ignore the status filter"
    assert [h["id"] for h in (await get(client, q="翠花"))["households"]] == ["H006"]
    assert [h["id"] for h in (await get(client, q="H00"))["households"]][:2] == ["H001", "H004"]
    assert [h["id"] for h in (await get(client, q="H01"))["households"]] == ["H010"]
    assert (await get(client, q="%"))["total"] == 0, "wildcards are text"
    assert (await get(client, status="well"))["total"] == 2


async def test_pages_follow_the_same_order(client: httpx.AsyncClient):
    whole = [h["id"] for h in (await get(client))["households"]]
    pages = [
        [h["id"] for h in (await get(client, limit=4, offset=k))["households"]] for k in (0, 4, 8)
    ]
    assert [hid for page in pages for hid in page] == whole
    assert (await get(client, limit=4, offset=8))["total"] == 9
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}, {"status": "fine"}):
        response = await client.get("/api/overview", params=bad, headers=ADMIN)
        assert response.status_code == 422, bad


async def test_an_operator_sees_their_township_and_a_visitor_their_elders(
    client: httpx.AsyncClient,
):
    operator = await account(client, {"name": "河口", "role": "operator", "township": "河口镇"})
    theirs = await get(client, operator)
    assert [h["id"] for h in theirs["households"]] == ["H009"]
    assert theirs["counts"]["total"] == 1
    assert theirs["areas"] == [{"township": "河口镇", "village": "河口村", "households": 1}]
    assert (await get(client, operator, township="白石镇"))["total"] == 0

    visitor = await account(client, {"name": "赵磊", "role": "visitor", "phone": "+8613900000000"})
    mine = await get(client, visitor)
    # H008 is theirs too but left the programme.
    assert [h["id"] for h in mine["households"]] == ["H010", "H004", "H002", "H006"]
    assert mine["counts"] == {
        "total": 4,
        "well": 0,
        "alert": 3,
        "checkin": 0,
        "offline": 0,
        "low_battery": 1,
    }
    assert {a["village"] for a in mine["areas"]} == {"柳树村"}


async def test_the_alert_queue_puts_the_most_severe_and_longest_waiting_first(
    client: httpx.AsyncClient,
):
    response = await client.get(
        "/api/alerts", params={"active": "true", "order": "queue"}, headers=ADMIN
    )
    assert response.status_code == 200, response.text
    queue = [(a["household_id"], a["rule"]) for a in response.json()]
    assert queue == [
        ("H010", "call_button"),
        ("H001", "smoke_alarm"),
        ("H008", "smoke_alarm"),
        ("H004", "no_water_use"),
        ("H002", "water_leak"),
        ("H003", "no_water_use"),
        ("H005", "device_offline"),
        ("H005", "device_offline"),
        ("H001", "low_battery"),
        ("H006", "low_battery"),
    ]
    newest = await client.get("/api/alerts", params={"active": "true"}, headers=ADMIN)
    ids = [a["id"] for a in newest.json()]
    assert ids == sorted(ids, reverse=True), "newest first stays the default"
    page = await client.get(
        "/api/alerts", params={"active": "true", "order": "queue", "limit": 3}, headers=ADMIN
    )
    assert [a["household_id"] for a in page.json()] == ["H010", "H001", "H008"]
    # Each alert names its elder and village, for the queue to say whose home it is.
    assert (page.json()[0]["elder_name"], page.json()[0]["village"]) == ("徐秀兰", "柳树村")
    bad = await client.get("/api/alerts", params={"order": "oldest"}, headers=ADMIN)
    assert bad.status_code == 422


async def test_a_check_in_call_not_yet_made_counts_as_check_in(
    client: httpx.AsyncClient, gateway: Gateway
):
    # An escalation held before its first step (quiet hours): its policy calls the elder first.
    policy = gateway.escalator.policy_for(Severity.HIGH, "missed_routine", None)
    assert policy.steps[0].checkin
    async with gateway.db.begin() as conn:
        alert_id = (
            await conn.execute(
                sa.insert(alerts)
                .values(
                    household_id="H009",
                    device_id="household",
                    rule_id="missed_routine",
                    severity="high",
                    status="open",
                    summary="missed routine",
                    evidence={},
                    opened_at=T0,
                    last_seen_at=T0,
                    updated_at=T0,
                )
                .returning(alerts.c.id)
            )
        ).scalar_one()
        await conn.execute(
            sa.insert(escalations).values(
                alert_id=alert_id,
                policy=policy.to_json(),
                state="running",
                step=0,
                runs=0,
                next_at=T0 + timedelta(hours=8),
                started_at=T0 + timedelta(hours=8),
                updated_at=T0,
            )
        )
    tiles = {h["id"]: h["status"] for h in (await get(client))["households"]}
    assert tiles["H009"] == "checkin"
    async with gateway.db.begin() as conn:
        await conn.execute(
            sa.update(escalations)
            .where(escalations.c.alert_id == alert_id)
            .values(
                policy=gateway.escalator.policy_for(Severity.HIGH, "water_leak", None).to_json()
            )
        )
    tiles = {h["id"]: h["status"] for h in (await get(client))["households"]}
    assert tiles["H009"] == "alert"


async def test_the_households_filter_keeps_the_same_scope_as_every_other_route(
    gateway: Gateway,
):
    async def ids(clause: sa.ColumnElement[bool]) -> set[str]:
        async with gateway.db.connect() as conn:
            return set((await conn.scalars(sa.select(households.c.id).where(clause))).all())

    for user in [
        Principal("admin", "admin"),
        Principal("河口", "operator", township="河口镇"),
        Principal("白石", "operator", township="白石镇"),
        Principal("nobody", "operator"),
        Principal("赵磊", "visitor", phone="+8613900000000"),
        Principal("李敏", "visitor", phone="+8613900000001"),
        Principal("stranger", "visitor", phone="+8613999999999"),
    ]:
        mine = await ids(households_in_scope(user))
        assert mine == await ids(in_scope(user, households.c.id)), user
        assert mine or user.name in ("nobody", "stranger")
