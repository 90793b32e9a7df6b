"""Visit reminders by SMS (fake Twilio on loopback) on a manual clock: the monthly list of elders
not yet visited, high-risk elders not visited for a week, elders whose situation changed."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.store.care_tables import care_reminders
from gateway.store.tables import households, notifications
from gateway.store.visits import VisitMethod, add_visit
from tests.fakes.aliyun import DEFAULT_SIGN_NAME, DEFAULT_TEMPLATE_CODE, FakeAliyunSms
from tests.fakes.twilio import FakeTwilio
from tests.integration.harness import api_client, isolated_settings, register, rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
LI, WANG, ZHOU = "+8613900000001", "+8613900000002", "+8613900000003"
EAST, WEST, NORTH = "东村", "西村", "北村"
TOKEN = "test-token-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# id: (name, village, visitors as (name, phone, language))
ELDERS: dict[str, tuple[str, str, list[tuple[str, str, str | None]]]] = {
    "H1": ("张桂兰", EAST, [("李敏", LI, None)]),
    "H2": ("王秀英", EAST, [("李敏", LI, None)]),
    "H3": ("刘大爷", WEST, [("李敏", LI, None), ("Wang Fang", WANG, "en")]),
    "H4": ("陈奶奶", WEST, [("Wang Fang", WANG, "en")]),
    "H5": ("赵爷爷", WEST, [("Wang Fang", WANG, "en")]),
    "H6": ("孙奶奶", NORTH, [("周强", ZHOU, None)]),
}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


class Reminders:
    """A gateway on a manual clock whose SMS go to the fake Twilio."""

    def __init__(self, gateway: Gateway, fake: FakeTwilio | None = None) -> None:
        self.gw = gateway
        self.fake = fake
        self._seen = 0

    async def run_at(self, when: datetime, gateway: Gateway | None = None) -> list[int]:
        gw = gateway or self.gw
        assert isinstance(gw.clock, ManualClock)
        gw.clock.set(when)
        queued = await gw.reminders.run_due()
        queue = gw.dispatcher.queue
        while not queue.empty():
            await gw.dispatcher.deliver(queue.get_nowait())
            queue.task_done()
        return queued

    def sms(self) -> list[tuple[str, str]]:
        """(to, body) of the SMS the fake received since the last call."""
        assert self.fake is not None
        messages = self.fake.messages
        found = [(r.form["To"], r.form["Body"]) for r in messages[self._seen :]]
        self._seen = len(messages)
        return sorted(found)

    async def visit(self, hid: str, at: datetime, *, automatic: bool = False) -> None:
        async with self.gw.db.begin() as conn:
            await add_visit(
                conn,
                household_id=hid,
                method=VisitMethod.PHONE,
                visited_at=at,
                visitor="李敏",
                summary="电话探访",
                details={"automatic": True} if automatic else {},
                now=at,
                by="test",
            )

    async def update(self, hid: str, **values: Any) -> None:
        async with self.gw.db.begin() as conn:
            await conn.execute(sa.update(households).where(households.c.id == hid).values(values))


def settings_for(database_url: str, unique_id: str, fake: FakeTwilio) -> Any:
    return isolated_settings(
        "mqtt://127.0.0.1:1",
        database_url,
        unique_id,
        twilio={
            "account_sid": fake.account_sid,
            "auth_token": fake.auth_token,
            "from": "+8675500000000",
            "api_base_url": fake.base_url,
            "timeout_s": 5.0,
        },
        alerts={"retry_backoff_s": 0.0},
    )


@asynccontextmanager
async def gateway_at(settings: Any, when: datetime) -> AsyncIterator[Gateway]:
    gw = Gateway(settings, clock=ManualClock(when))
    await gw.prepare()
    try:
        yield gw
    finally:
        await gw.close()


@pytest.fixture
async def reminders(
    database_url: str, unique_id: str, fake_twilio: FakeTwilio
) -> AsyncIterator[Reminders]:
    settings = settings_for(database_url, unique_id, fake_twilio)
    async with gateway_at(settings, local(1, 8)) as gw:
        for hid, (name, village, visitors) in ELDERS.items():
            await register(
                gw,
                {
                    "id": hid,
                    "elder": {"name": name, "phone": "+8613800000000"},
                    "address": {"county": "某县", "township": "某镇", "village": village},
                    "visitors": [
                        {"name": n, "phone": p, **({"language": lang} if lang else {})}
                        for n, p, lang in visitors
                    ],
                },
            )
        yield Reminders(gw, fake_twilio)


async def test_on_the_20th_each_visitor_gets_their_elders_not_yet_visited_once(
    reminders: Reminders, database_url: str, unique_id: str
):
    await reminders.visit("H1", local(5, 10))
    await reminders.visit("H4", local(8, 3), automatic=True)  # a device back online: no contact
    await reminders.visit("H6", local(12, 15))
    await reminders.update("H5", left_on=date(2026, 11, 10))
    assert await reminders.run_at(local(20, 8, 59)) == []  # not before send_at

    assert len(await reminders.run_at(local(20, 9))) == 2
    assert reminders.sms() == [
        (LI, "本月尚未探访的老人：王秀英（东村）、刘大爷（西村）（共2位）。请在月底前完成探访。"),
        (
            WANG,
            "Elders you have not visited yet this month: 刘大爷 (西村), 陈奶奶 (西村) (2 in all). "
            "Please visit them before the end of the month.",
        ),
    ]
    bodies = [n["body"] for n in await rows(reminders.gw, sa.select(notifications))]
    assert not [b for b in bodies if re.search(r"\d{7,}", b)]  # never a phone number

    assert await reminders.run_at(local(20, 10)) == []
    assert reminders.fake is not None
    settings = settings_for(database_url, unique_id, reminders.fake)
    async with gateway_at(settings, local(20, 9)) as restarted:  # a restart, another process
        assert await reminders.run_at(local(20, 9), restarted) == []
    assert await reminders.run_at(local(21, 9)) == []  # not a reminder day
    assert reminders.sms() == []
    sent = await rows(reminders.gw, sa.select(care_reminders))
    assert sorted((r["kind"], r["period"], sorted(r["households"])) for r in sent) == [
        ("monthly", "2026-11-20", ["H2", "H3"]),
        ("monthly", "2026-11-20", ["H3", "H4"]),
    ]

    await reminders.visit("H2", local(22, 9))
    await reminders.visit("H3", local(23, 9))
    await reminders.run_at(local(25, 9))
    assert reminders.sms() == [
        (
            WANG,
            "Elders you have not visited yet this month: 陈奶奶 (西村) (1 in all). "
            "Please visit them before the end of the month.",
        )
    ]


async def test_a_high_risk_elder_not_visited_for_a_week_is_reminded_weekly(
    reminders: Reminders,
):
    await reminders.update("H1", risk="high")
    await reminders.update("H2", risk="high")
    for hid in ("H3", "H4", "H5", "H6"):  # visited: no monthly reminder on the 25th
        await reminders.visit(hid, local(2, 9))
    await reminders.visit("H1", local(9, 9))  # 8 days before the 17th
    await reminders.visit("H2", local(12, 9))  # 5 days before

    await reminders.run_at(local(17, 9))
    assert reminders.sms() == [(LI, "高风险老人已7天未探访：张桂兰（东村）（共1位）。请尽快探访。")]
    await reminders.run_at(local(18, 9))
    await reminders.run_at(local(18, 10))
    assert reminders.sms() == []  # once a week, not every day

    await reminders.run_at(local(24, 9))
    assert reminders.sms() == [
        (LI, "高风险老人已7天未探访：张桂兰（东村）、王秀英（东村）（共2位）。请尽快探访。")
    ]


async def test_a_change_in_an_elders_situation_asks_for_a_visit_within_24_hours(
    reminders: Reminders,
):
    for hid in ELDERS:  # all visited early in the month: no other reminders
        await reminders.visit(hid, local(2, 9))
    await reminders.update("H3", situation_changed_at=local(17, 9, 30))
    await reminders.update("H1", situation_changed_at=local(15, 9, 30))  # over 24 h ago
    await reminders.update("H2", situation_changed_at=local(17, 8))
    await reminders.visit("H2", local(17, 9, 45))  # visited since the change

    await reminders.run_at(local(17, 10))
    assert reminders.sms() == [
        (LI, "以下老人情况有重大变化，请在24小时内探访：刘大爷（西村）（共1位）。"),
        (
            WANG,
            "The situation of these elders has changed; please visit within 24 hours: "
            "刘大爷 (西村) (1 in all).",
        ),
    ]
    await reminders.run_at(local(17, 11))
    assert reminders.sms() == []

    await reminders.update("H3", situation_changed_at=local(17, 22, 10))  # changed again
    await reminders.run_at(local(17, 23))
    assert reminders.sms() == []  # not at night
    await reminders.run_at(local(18, 9))
    assert [to for to, _ in reminders.sms()] == [LI, WANG]
    await reminders.visit("H3", local(18, 11))
    await reminders.update("H4", situation_changed_at=local(18, 11, 30))
    await reminders.run_at(local(18, 12))
    assert reminders.sms() == [
        (
            WANG,
            "The situation of these elders has changed; please visit within 24 hours: "
            "陈奶奶 (西村) (1 in all).",
        )
    ]


async def test_two_gateway_processes_at_the_same_hour_send_each_reminder_once(
    reminders: Reminders, database_url: str, unique_id: str
):
    assert reminders.fake is not None
    settings = settings_for(database_url, unique_id, reminders.fake)
    async with gateway_at(settings, local(20, 9)) as other:
        queued = await asyncio.gather(
            reminders.run_at(local(20, 9)), reminders.run_at(local(20, 9), other)
        )
    assert sum(len(q) for q in queued) == 3
    # H1-H5 unvisited: 李敏 (H1-H3) and Wang Fang (H3, H4); 周强's elder H6 too.
    assert [to for to, _ in reminders.sms()] == [LI, WANG, ZHOU]


async def test_on_mainland_sms_a_reminder_fills_the_approved_template(
    database_url: str, unique_id: str, fake_aliyun: FakeAliyunSms
):
    settings = isolated_settings(
        "mqtt://127.0.0.1:1",
        database_url,
        unique_id,
        aliyun={
            "access_key_id": fake_aliyun.access_key_id,
            "access_key_secret": fake_aliyun.access_key_secret,
            "sign_name": DEFAULT_SIGN_NAME,
            "template_code": DEFAULT_TEMPLATE_CODE,
            "endpoint": fake_aliyun.endpoint,
            "protocol": "http",
            "timeout_s": 5.0,
        },
        escalation={"sms_provider": "aliyun"},
        alerts={"retry_backoff_s": 0.0},
    )
    async with gateway_at(settings, local(1, 8)) as gw:
        name, village, visitors = ELDERS["H2"]
        await register(
            gw,
            {
                "id": "H2",
                "elder": {"name": name},
                "address": {"village": village},
                "visitors": [{"name": visitors[0][0], "phone": visitors[0][1]}],
            },
        )
        await Reminders(gw).run_at(local(20, 9))
    (sent,) = fake_aliyun.messages
    assert sent.params["PhoneNumbers"] == LI.removeprefix("+86")
    assert sent.template_param == {
        "elder": "王秀英",
        "address": "东村",
        "event": "本月尚未探访",
        "time": "11月20日",
        "action": "请在月底前完成探访",
        "ack": "无需回复",
    }


async def test_a_change_recorded_through_the_api_reminds_the_elders_visitors(
    reminders: Reminders,
):
    for hid in ELDERS:
        await reminders.visit(hid, local(2, 9))
    clock = reminders.gw.clock
    assert isinstance(clock, ManualClock)
    clock.set(local(17, 9, 20))
    async with api_client(reminders.gw, TOKEN) as client:
        made = await client.post(
            "/api/accounts",
            json={"name": "周强", "role": "visitor", "phone": ZHOU},
            headers=ADMIN,
        )
        visitor = {"Authorization": f"Bearer {made.json()['token']}"}
        recorded = await client.post(
            "/api/households/H6/situation-changes", json={"note": "住院回家"}, headers=visitor
        )
        assert recorded.status_code == 201, recorded.text
        assert recorded.json()["situation_changed_at"] == "2026-11-17T01:20:00Z"
        not_theirs = await client.post(
            "/api/households/H1/situation-changes", json={"note": "住院回家"}, headers=visitor
        )
        assert not_theirs.status_code == 404
        (entry,) = (await client.get("/api/audit", headers=ADMIN)).json()[:1]
        assert (entry["action"], entry["household_id"], entry["details"]) == (
            "household.situation_change",
            "H6",
            {"note": "住院回家"},
        )

    await reminders.run_at(local(17, 10))
    assert reminders.sms() == [
        (ZHOU, "以下老人情况有重大变化，请在24小时内探访：孙奶奶（北村）（共1位）。")
    ]
