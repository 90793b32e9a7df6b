"""RobotNotifier against fake WeCom and DingTalk robot webhooks over real HTTP on loopback."""

from __future__ import annotations

import base64
import hashlib
import hmac
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

import pytest

from gateway.alerts.notifiers.base import (
    Channel,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from gateway.alerts.notifiers.robots import RobotNotifier, dingtalk_sign
from gateway.clock import ManualClock
from gateway.config import RobotSettings
from tests.fakes.robots import DEFAULT_DINGTALK_SECRET, DEFAULT_DINGTALK_TOKEN, FakeRobots

LINK = "https://care.example.org/ack/abc123"
BODY = "张大爷家（幸福路1号）跌倒报警，09:30。请立即联系老人，家属电话 13912345678。"


def robots_for(fake: FakeRobots, **dingtalk: Any) -> list[RobotSettings]:
    return [
        RobotSettings(name="control-room", kind="wecom", url=fake.wecom_url()),
        RobotSettings(
            name="east-village",
            kind="dingtalk",
            url=fake.dingtalk_url(),
            secret=DEFAULT_DINGTALK_SECRET,
            villages=["东村"],
        )
        if not dingtalk
        else RobotSettings(name="east-village", kind="dingtalk", **dingtalk),
    ]


@pytest.fixture
async def notifier(fake_robots: FakeRobots) -> AsyncIterator[RobotNotifier]:
    robot_notifier = RobotNotifier(robots_for(fake_robots), timeout_s=0.5)
    yield robot_notifier
    await robot_notifier.aclose()


def robot_message(to: str, body: str = BODY, link: str | None = LINK) -> OutboundMessage:
    return OutboundMessage(
        channel=Channel.ROBOT, to_phone=to, to_name="值班群", body=body, title="跌倒报警", link=link
    )


async def test_wecom_gets_markdown_with_title_body_and_link(
    fake_robots: FakeRobots, notifier: RobotNotifier
) -> None:
    delivery = await notifier.send(robot_message("control-room"))

    [request] = fake_robots.messages
    assert request.kind == "wecom"
    assert request.payload["msgtype"] == "markdown"
    assert set(request.payload["markdown"]) == {"content"}
    content = request.markdown
    assert content is not None
    assert content.startswith("### 跌倒报警\n张大爷家（幸福路1号）跌倒报警")
    assert content.endswith(f"[点此确认]({LINK})")
    assert delivery.provider == "wecom"
    assert delivery.status == "sent"


async def test_dingtalk_gets_markdown_with_title_and_a_valid_signature(
    fake_robots: FakeRobots, notifier: RobotNotifier
) -> None:
    delivery = await notifier.send(robot_message("east-village"))

    [request] = fake_robots.messages
    assert request.kind == "dingtalk"
    assert request.query["access_token"] == DEFAULT_DINGTALK_TOKEN
    assert request.payload["markdown"]["title"] == "跌倒报警"
    assert request.payload["markdown"]["text"].endswith(f"[点此确认]({LINK})")
    assert delivery.provider == "dingtalk"


def test_dingtalk_sign_matches_the_documented_recipe() -> None:
    secret, timestamp = "SECabc", 1_700_000_000_000
    digest = hmac.new(b"SECabc", b"1700000000000\nSECabc", hashlib.sha256).digest()

    sign = dingtalk_sign(secret, timestamp)

    assert unquote_plus(sign) == base64.b64encode(digest).decode()
    assert "+" not in sign
    assert "/" not in sign
    assert "=" not in sign


async def test_phone_numbers_never_reach_the_group(
    fake_robots: FakeRobots, notifier: RobotNotifier
) -> None:
    await notifier.send(robot_message("control-room"))
    await notifier.send(robot_message("east-village"))

    for request in fake_robots.messages:
        assert b"13912345678" not in request.raw_body
        assert "139****5678" in (request.markdown or "")


async def test_no_link_no_link_line(fake_robots: FakeRobots, notifier: RobotNotifier) -> None:
    await notifier.send(robot_message("control-room", link=None))

    assert "](" not in (fake_robots.messages[0].markdown or "")


async def test_a_long_body_is_cut_to_wecoms_limit_keeping_the_link(
    fake_robots: FakeRobots, notifier: RobotNotifier
) -> None:
    await notifier.send(robot_message("control-room", body="长" * 3000))

    content = fake_robots.messages[0].markdown or ""
    assert len(content.encode()) <= 4096
    assert content.endswith(f"[点此确认]({LINK})")


async def test_a_stale_clock_makes_dingtalk_refuse_the_signature_permanently(
    fake_robots: FakeRobots,
) -> None:
    stale = ManualClock(datetime.now(UTC) - timedelta(hours=2))
    notifier = RobotNotifier(robots_for(fake_robots), wall_clock=stale)

    with pytest.raises(PermanentSendError, match="310000"):
        await notifier.send(robot_message("east-village"))
    await notifier.aclose()


async def test_wrong_secret_is_refused_permanently(fake_robots: FakeRobots) -> None:
    robots = robots_for(fake_robots, url=fake_robots.dingtalk_url(), secret="SECwrong")
    notifier = RobotNotifier(robots)

    with pytest.raises(PermanentSendError, match="310000") as caught:
        await notifier.send(robot_message("east-village"))
    await notifier.aclose()

    assert fake_robots.messages == []
    assert DEFAULT_DINGTALK_TOKEN not in str(caught.value)


async def test_unsigned_request_to_a_signing_robot_is_refused(fake_robots: FakeRobots) -> None:
    notifier = RobotNotifier(robots_for(fake_robots, url=fake_robots.dingtalk_url()))

    with pytest.raises(PermanentSendError, match="sign not match"):
        await notifier.send(robot_message("east-village"))
    await notifier.aclose()


async def test_a_robot_without_secret_sends_no_signature() -> None:
    with FakeRobots(dingtalk_robots={"open-token": None}) as fake:
        notifier = RobotNotifier(robots_for(fake, url=fake.dingtalk_url("open-token")))
        await notifier.send(robot_message("east-village"))
        await notifier.aclose()

    [request] = fake.messages
    assert set(request.query) == {"access_token"}


async def test_wrong_wecom_key_is_permanent_and_does_not_leak_the_key(
    fake_robots: FakeRobots,
) -> None:
    robots = [RobotSettings(name="control-room", kind="wecom", url=fake_robots.wecom_url("nope"))]
    notifier = RobotNotifier(robots)

    with pytest.raises(PermanentSendError, match="93000") as caught:
        await notifier.send(robot_message("control-room"))
    await notifier.aclose()

    assert "key=" not in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "robot", "errcode"),
    [
        ("wecom", "control-room", 45009),
        ("wecom", "control-room", -1),
        ("dingtalk", "east-village", 130101),
        ("dingtalk", "east-village", 410100),
        ("dingtalk", "east-village", 660026),
    ],
)
async def test_rate_limits_are_retryable(
    fake_robots: FakeRobots, notifier: RobotNotifier, kind: str, robot: str, errcode: int
) -> None:
    fake_robots.fail_next(1, errcode=errcode, errmsg="send too fast", kind=kind)

    with pytest.raises(RetryableSendError, match=str(errcode)):
        await notifier.send(robot_message(robot))
    await notifier.send(robot_message(robot))

    assert len(fake_robots.messages) == 1


@pytest.mark.parametrize(
    ("kind", "robot"), [("wecom", "control-room"), ("dingtalk", "east-village")]
)
@pytest.mark.parametrize("status", [500, 502, 429])
async def test_server_errors_are_retryable(
    fake_robots: FakeRobots, notifier: RobotNotifier, kind: str, robot: str, status: int
) -> None:
    fake_robots.fail_next(1, status=status, errmsg="bad gateway", kind=kind)

    with pytest.raises(RetryableSendError, match=f"HTTP {status}"):
        await notifier.send(robot_message(robot))


async def test_other_errcodes_are_permanent_with_numbers_masked(
    fake_robots: FakeRobots, notifier: RobotNotifier
) -> None:
    fake_robots.fail_next(1, errcode=40058, errmsg="bad mobile 13912345678")

    with pytest.raises(PermanentSendError, match="40058") as caught:
        await notifier.send(robot_message("control-room"))

    assert "13912345678" not in str(caught.value)


async def test_unknown_robot_and_other_channels_are_permanent(
    fake_robots: FakeRobots, notifier: RobotNotifier
) -> None:
    with pytest.raises(PermanentSendError, match="no robot named 'west-village'"):
        await notifier.send(robot_message("west-village"))
    sms = OutboundMessage(channel=Channel.SMS, to_phone="+8613912345678", to_name="李四", body="x")
    with pytest.raises(PermanentSendError, match="ROBOT messages only") as caught:
        await notifier.send(sms)

    assert "13912345678" not in str(caught.value)
    assert fake_robots.requests == []


def test_robot_names_must_be_unique(fake_robots: FakeRobots) -> None:
    robots = robots_for(fake_robots)
    with pytest.raises(ValueError, match="control-room"):
        RobotNotifier([robots[0], robots[0]])


async def test_webhook_not_listening_is_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/cgi-bin/webhook/send?key=k"
    notifier = RobotNotifier([RobotSettings(name="r", kind="wecom", url=url)], timeout_s=0.5)

    with pytest.raises(RetryableSendError, match="ConnectError") as caught:
        await notifier.send(robot_message("r"))
    await notifier.aclose()

    assert "key=" not in str(caught.value)


async def test_webhook_that_never_answers_times_out_as_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/robot/send?access_token=t"
        notifier = RobotNotifier([RobotSettings(name="r", kind="dingtalk", url=url)], timeout_s=0.2)

        with pytest.raises(RetryableSendError, match="Timeout"):
            await notifier.send(robot_message("r"))
        await notifier.aclose()


@pytest.mark.parametrize("url", ["qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", "ftp://x/y"])
async def test_a_webhook_url_that_is_no_http_url_is_permanent(url: str) -> None:
    notifier = RobotNotifier([RobotSettings(name="r", kind="wecom", url=url)])

    with pytest.raises(PermanentSendError, match="not an http") as caught:
        await notifier.send(robot_message("r"))
    await notifier.aclose()

    assert "key=" not in str(caught.value)
