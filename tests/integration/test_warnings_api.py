"""Emergency warnings end to end: issued through the API, sent by SMS through a fake Twilio,
answered by the visitors' SMS replies (signed webhooks over real HTTP) and by the API.

某镇 has two villages. 东村: 张桂兰 (visitors 李敏 and 王芳), 刘秀英 (王芳), 陈玉珍 (nobody),
and 周凤英, who left the programme. 西村: 王淑芬 (李敏 and Zhao Gang, who reads English),
李桂芝 (Zhao Gang). 李敏 covers both villages. 别镇 has one elder and its own operator.
Numbers go by village, then name: in 东村 1 刘秀英, 2 张桂兰, 3 陈玉珍; then 西村 4 李桂芝,
5 王淑芬.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from gateway.api.app import create_api
from gateway.app import Gateway, listen
from gateway.clock import ManualClock
from gateway.models import Finding, FindingAction, Severity
from gateway.store.care_tables import audit_log
from gateway.store.tables import alerts, households
from tests.fakes.twilio import FakeTwilio, message_texts
from tests.integration.harness import isolated_settings, register, rows

T0 = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
TOKEN = "test-token-0123456789"
LI_MIN, WANG_FANG, ZHAO_GANG = "+8613900000001", "+8613900000002", "+8613900000003"
PHONE_LIKE = re.compile(r"\d{7,}")


def _elder(
    hid: str, name: str, village: str, visitors: list[dict[str, str]], township: str = "某镇"
) -> dict[str, Any]:
    return {
        "id": hid,
        "elder": {"name": name, "phone": "+8613800000000"},
        "address": {"county": "某县", "township": township, "village": village, "detail": "3组"},
        "visitors": visitors,
    }


LI = {"name": "李敏", "phone": LI_MIN}
WANG = {"name": "王芳", "phone": WANG_FANG}
ZHAO = {"name": "Zhao Gang", "phone": ZHAO_GANG, "language": "en"}
ELDERS = [
    _elder("E-ZHANG", "张桂兰", "东村", [LI, WANG]),
    _elder("E-LIU", "刘秀英", "东村", [WANG]),
    _elder("E-CHEN", "陈玉珍", "东村", []),
    _elder("E-ZHOU", "周凤英", "东村", [WANG]),
    _elder("W-WANG", "王淑芬", "西村", [LI, ZHAO]),
    _elder("W-LI", "李桂芝", "西村", [ZHAO]),
    _elder("B-1", "孙秀兰", "南村", [], township="别镇"),
]
TYPHOON = {
    "title": "台风“海葵”红色预警",
    "body": "今夜台风登陆，请转移危房内的老人。",
    "kind": "typhoon",
    "level": "red",
    "county": "某县",
    "township": "某镇",
}


class Served:
    """A gateway whose API listens on loopback with Twilio pointed at the fake; tokens for
    the admin, both townships' operators and the three visitors."""

    def __init__(self, gateway: Gateway, fake: FakeTwilio, base: str) -> None:
        self.gw = gateway
        self.fake = fake
        self.base = base
        self.tokens: dict[str, str] = {"admin": TOKEN}

    def client(self, who: str = "admin") -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )

    async def deliver(self) -> None:
        queue = self.gw.dispatcher.queue
        while not queue.empty():
            await self.gw.dispatcher.deliver(queue.get_nowait())
            queue.task_done()

    async def issue(self, who: str = "admin", **changes: Any) -> httpx.Response:
        async with self.client(who) as c:
            answer = await c.post("/api/warnings", json={**TYPHOON, **changes})
        await self.deliver()
        return answer

    async def detail(self, warning_id: int, who: str = "admin") -> dict[str, Any]:
        async with self.client(who) as c:
            answer = await c.get(f"/api/warnings/{warning_id}")
        assert answer.status_code == 200, answer.text
        found = answer.json()
        assert isinstance(found, dict)
        return found

    async def sms(self, phone: str, body: str) -> list[str]:
        status, answer = await self.fake.ainbound_sms(
            self.base + "/api/webhooks/twilio/sms", phone, body
        )
        assert status == 200
        return message_texts(answer)

    def texts_to(self, phone: str) -> list[str]:
        return [r.form["Body"] for r in self.fake.messages if r.form.get("To") == phone]


@pytest.fixture
async def served(
    database_url: str, unique_id: str, fake_twilio: FakeTwilio
) -> AsyncIterator[Served]:
    sock = listen("127.0.0.1", 0)
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    settings = isolated_settings(
        "mqtt://127.0.0.1:1",
        database_url,
        unique_id,
        public_url=base,
        twilio={
            "account_sid": fake_twilio.account_sid,
            "auth_token": fake_twilio.auth_token,
            "from": "+8675500000000",
            "api_base_url": fake_twilio.base_url,
            "timeout_s": 5.0,
        },
        alerts={"retry_backoff_s": 0.0},
        escalation={"batch_window_s": 0},
    )
    gw = Gateway(settings, clock=ManualClock(T0))
    await gw.prepare()
    for body in ELDERS:
        await register(gw, body)
    async with gw.db.begin() as conn:
        await conn.execute(
            sa.update(households)
            .where(households.c.id == "E-ZHOU")
            .values(left_on=date(2026, 11, 2), left_reason="moved to her daughter's")
        )
    server = uvicorn.Server(
        uvicorn.Config(create_api(gw.api_context(TOKEN)), log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        served = Served(gw, fake_twilio, base)
        accounts = {
            "operator": {"name": "某镇民政", "role": "operator", "township": "某镇"},
            "other_operator": {"name": "别镇民政", "role": "operator", "township": "别镇"},
            "li": {"name": "李敏", "role": "visitor", "phone": LI_MIN},
            "wang": {"name": "王芳", "role": "visitor", "phone": WANG_FANG},
            "zhao": {"name": "Zhao Gang", "role": "visitor", "phone": ZHAO_GANG},
        }
        async with served.client() as c:
            for who, body in accounts.items():
                created = await c.post("/api/accounts", json=body)
                assert created.status_code == 201, created.text
                served.tokens[who] = created.json()["token"]
        yield served
    finally:
        server.should_exit = True
        await task
        await gw.close()


def numbered(detail: dict[str, Any], key: str = "elders") -> dict[int, str]:
    return {e["number"]: e["name"] for e in detail[key]}


async def test_a_warning_to_one_village_reaches_its_visitors_with_their_elders_there_only(
    served: Served,
):
    answer = await served.issue("operator", villages=["东村"])
    assert answer.status_code == 201, answer.text
    issued = answer.json()
    # 周凤英 left the programme; 陈玉珍 has no visitor: nobody was told about her.
    assert (issued["elders"], issued["visitors_notified"]) == (3, 2)
    assert issued["unreached"] == ["E-CHEN"]

    (to_li,) = served.texts_to(LI_MIN)
    assert to_li.startswith("【红色台风预警】台风“海葵”红色预警\n今夜台风登陆")
    assert "\n2. 张桂兰 东村 3组\n" in to_li
    assert "刘秀英" not in to_li
    assert "王淑芬" not in to_li
    assert "“1 安全”" in to_li
    assert "全部安全" in to_li
    (to_wang,) = served.texts_to(WANG_FANG)
    assert "\n1. 刘秀英 东村 3组\n2. 张桂兰 东村 3组\n" in to_wang
    assert "周凤英" not in to_wang
    assert served.texts_to(ZHAO_GANG) == []  # 西村 only
    assert not any(PHONE_LIKE.search(t) for t in to_li + to_wang)

    detail = await served.detail(issued["id"], "operator")
    assert detail["counts"] == {"pending": 3, "checked": 0, "safe": 0, "shelter": 0}
    assert numbered(detail, "pending") == {1: "刘秀英", 2: "张桂兰", 3: "陈玉珍"}
    (nobody,) = detail["no_visitor"]
    assert (nobody["name"], nobody["no_visitor"], nobody["visitors"]) == ("陈玉珍", True, [])
    zhang = detail["pending"][1]
    assert [v["name"] for v in zhang["visitors"]] == ["李敏", "王芳"]
    assert {v["phone"] for v in zhang["visitors"]} == {"+86139****0001", "+86139****0002"}

    (entry,) = await rows(
        served.gw, sa.select(audit_log).where(audit_log.c.action == "warning.issue")
    )
    assert (entry["actor"], entry["details"]["elders"]) == ("某镇民政", 3)


async def test_visitors_reply_by_sms_and_the_warning_shows_live_who_is_left(served: Served):
    warning_id = (await served.issue()).json()["id"]
    (to_zhao,) = served.texts_to(ZHAO_GANG)
    assert to_zhao.startswith("[red typhoon warning]")
    assert "\n4. 李桂芝, 西村 3组\n5. 王淑芬, 西村 3组\n" in to_zhao

    answer = await served.sms(WANG_FANG, "１ ２ 安全")
    assert answer == [
        "已记录（台风“海葵”红色预警）：1 刘秀英、2 张桂兰 安全。您负责的老人已全部确认，谢谢！"
    ]
    detail = await served.detail(warning_id)
    assert numbered(detail, "pending") == {3: "陈玉珍", 4: "李桂芝", 5: "王淑芬"}
    assert detail["elders"][0]["updated_by"] == "王芳（短信）"

    # 李桂芝 is Zhao Gang's, not 李敏's: refused, and 李敏 is told who is still hers.
    answer = await served.sms(LI_MIN, "4 转移")
    assert answer == ["以下编号不是您在本次预警中负责的老人：4。尚待回复：5 王淑芬。"]
    assert numbered(await served.detail(warning_id), "pending") == {
        3: "陈玉珍",
        4: "李桂芝",
        5: "王淑芬",
    }

    answer = await served.sms(ZHAO_GANG, "all safe")
    assert answer == [
        "Recorded for 台风“海葵”红色预警: 4 李桂芝, 5 王淑芬 safe. "
        "All your elders are accounted for. Thank you."
    ]
    answer = await served.sms(LI_MIN, "全部安全")  # nothing of hers left
    assert answer == ["您负责的老人已全部确认，谢谢！"]

    detail = await served.detail(warning_id)
    assert detail["counts"] == {"pending": 1, "checked": 0, "safe": 4, "shelter": 0}
    assert [e["name"] for e in detail["pending"]] == [e["name"] for e in detail["no_visitor"]]
    assert detail["no_visitor"][0]["name"] == "陈玉珍"
    marks = await rows(
        served.gw,
        sa.select(audit_log.c.household_id).where(audit_log.c.action == "warning.check"),
    )
    assert sorted(m["household_id"] for m in marks) == ["E-LIU", "E-ZHANG", "W-LI", "W-WANG"]


async def test_an_alert_acknowledgement_by_sms_still_works_while_a_warning_is_open(
    served: Served,
):
    await served.issue()
    finding = Finding(
        rule_id="smoke_alarm",
        household_id="E-ZHANG",
        device_id="smoke-1",
        severity=Severity.CRITICAL,
        action=FindingAction.OPEN,
        ts=T0,
        summary="smoke",
    )
    async with served.gw.db.begin() as conn:
        applied = await served.gw.book.apply(conn, [finding])
    served.gw.dispatcher.submit(applied.notification_ids)
    await served.deliver()

    (reply,) = await served.sms(LI_MIN, "1")
    assert reply.startswith("已确认：张桂兰家")
    (alert,) = await rows(served.gw, sa.select(alerts))
    assert (alert["status"], alert["acknowledged_by"]) == ("acknowledged", "李敏（短信）")
    # The warning's elders are untouched.
    assert (await served.detail(1))["counts"]["pending"] == 5


async def test_marking_by_api_stays_within_each_callers_elders(served: Served):
    warning_id = (await served.issue(villages=["东村", "西村"])).json()["id"]
    checks = f"/api/warnings/{warning_id}/checks"
    async with served.client("wang") as wang:
        marked = await wang.post(
            checks, json={"household_id": "E-LIU", "status": "shelter", "note": "移至村委会"}
        )
        assert marked.status_code == 200, marked.text
        assert (marked.json()["status"], marked.json()["updated_by"]) == ("shelter", "王芳")
        # Another visitor's elder, an elder outside the warning: as if they did not exist.
        for household in ("W-LI", "B-1", "nobody"):
            refused = await wang.post(checks, json={"household_id": household, "status": "safe"})
            assert refused.status_code == 404
        bad = await wang.post(checks, json={"household_id": "E-LIU", "status": "pending"})
        assert bad.status_code == 422
    # A visitor sees their own elders only, and no warning without them.
    mine = await served.detail(warning_id, "wang")
    assert numbered(mine) == {1: "刘秀英", 2: "张桂兰"}
    assert mine["counts"] == {"pending": 1, "checked": 0, "safe": 0, "shelter": 1}
    async with served.client("operator") as operator:
        marked = await operator.post(checks, json={"household_id": "E-CHEN", "status": "checked"})
        assert marked.status_code == 200
        closed = await operator.post(f"/api/warnings/{warning_id}/close")
        assert closed.status_code == 200
        assert closed.json()["closed_at"]
        late = await operator.post(checks, json={"household_id": "E-CHEN", "status": "safe"})
        assert late.status_code == 409
    # Closed: a reply is no longer the warning's, and gets the alerts' help.
    assert await served.sms(LI_MIN, "2 安全") == ["回复1确认报警，到达现场后回复2。"]

    one_village = (await served.issue(villages=["西村"])).json()["id"]
    async with served.client("wang") as wang:
        assert (await wang.get(f"/api/warnings/{one_village}")).status_code == 404
        listed = await wang.get("/api/warnings")
        assert [w["id"] for w in listed.json()] == [warning_id]


async def test_an_operator_of_another_township_can_neither_issue_there_nor_see_it(
    served: Served,
):
    assert (await served.issue("other_operator")).status_code == 403
    assert (await served.issue("li")).status_code == 403
    warning_id = (await served.issue("operator")).json()["id"]
    async with served.client("other_operator") as other:
        assert (await other.get(f"/api/warnings/{warning_id}")).status_code == 404
        assert (await other.get("/api/warnings")).json() == []
        assert (await other.post(f"/api/warnings/{warning_id}/close")).status_code == 404
        refused = await other.post(
            f"/api/warnings/{warning_id}/checks", json={"household_id": "E-CHEN", "status": "safe"}
        )
        assert refused.status_code == 404
        own = await other.post("/api/warnings", json={**TYPHOON, "township": "别镇"})
        assert own.status_code == 201
        assert [w["id"] for w in (await other.get("/api/warnings")).json()] == [own.json()["id"]]
    async with served.client("operator") as operator:
        listed = await operator.get("/api/warnings")
        assert [w["id"] for w in listed.json()] == [warning_id]


async def test_a_warning_to_an_area_without_elders_is_refused_naming_the_field(served: Served):
    answer = await served.issue(township="无此镇")
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["loc"] == ["body", "township"]
    answer = await served.issue(villages=["北村"])
    assert answer.json()["detail"][0]["loc"] == ["body", "villages"]
    answer = await served.issue(kind="meteor")
    assert answer.status_code == 422
    assert "meteor" not in answer.text
    partly = await served.issue(villages=["东村", "北村"])
    assert partly.json()["villages_without_elders"] == ["北村"]
