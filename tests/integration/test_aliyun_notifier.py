"""AliyunSmsNotifier (the official SDK) against a fake SendSms API over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.alerts.notifiers.aliyun import AliyunSmsNotifier, mainland_number
from gateway.alerts.notifiers.base import (
    Channel,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from gateway.config import AliyunSettings
from tests.fakes.aliyun import DEFAULT_SIGN_NAME, DEFAULT_TEMPLATE_CODE, FakeAliyunSms

TO = "+8613912345678"
LOCAL = "13912345678"
FIELDS = {
    "elder": "张大爷",
    "address": "幸福路1号",
    "event": "跌倒报警",
    "time": "12月1日 09:30",
    "action": "请立即联系老人",
    "ack": "回复1确认",
}


def settings_for(
    endpoint: str, fake: FakeAliyunSms | None = None, **changes: Any
) -> AliyunSettings:
    values: dict[str, Any] = {
        "access_key_id": fake.access_key_id if fake else "LTAI-none",
        "access_key_secret": fake.access_key_secret if fake else "secret",
        "sign_name": DEFAULT_SIGN_NAME,
        "template_code": DEFAULT_TEMPLATE_CODE,
        "endpoint": endpoint,
        "protocol": "http",
        "timeout_s": 0.5,
    }
    return AliyunSettings(**(values | changes))


def notifier_for(fake: FakeAliyunSms, **changes: Any) -> AliyunSmsNotifier:
    return AliyunSmsNotifier(settings_for(fake.endpoint, fake, **changes))


def sms(to: str = TO, channel: Channel = Channel.SMS) -> OutboundMessage:
    return OutboundMessage(
        channel=channel, to_phone=to, to_name="李四", body="（正文不发送）", fields=FIELDS
    )


def assert_no_number(text: str) -> None:
    assert LOCAL not in text
    assert TO not in text


async def test_sms_goes_out_as_the_template_with_the_fields_and_a_local_number(
    fake_aliyun: FakeAliyunSms,
) -> None:
    delivery = await notifier_for(fake_aliyun).send(sms())

    [request] = fake_aliyun.messages
    assert request.signature_ok
    assert request.access_key_id == fake_aliyun.access_key_id
    assert request.params["PhoneNumbers"] == LOCAL
    assert request.params["SignName"] == DEFAULT_SIGN_NAME
    assert request.params["TemplateCode"] == DEFAULT_TEMPLATE_CODE
    assert request.template_param == FIELDS
    assert request.text == (
        "【居家关爱】张大爷家（幸福路1号）跌倒报警，时间12月1日 09:30。请立即联系老人回复1确认"
    )
    assert request.headers["authorization"].startswith("ACS3-HMAC-SHA256 ")
    assert delivery.provider == "aliyun"
    assert delivery.provider_id is not None
    assert delivery.provider_id.endswith("^0")
    assert delivery.status == "accepted"


async def test_each_send_is_signed_afresh(fake_aliyun: FakeAliyunSms) -> None:
    notifier = notifier_for(fake_aliyun)

    for _ in range(3):
        await notifier.send(sms())

    assert len(fake_aliyun.messages) == 3  # a reused nonce would have been refused


async def test_the_fake_refuses_a_replayed_or_altered_request(fake_aliyun: FakeAliyunSms) -> None:
    # The fake's check must be as strict as Aliyun's, or the tests above would prove little.
    await notifier_for(fake_aliyun).send(sms())
    [sent] = fake_aliyun.requests
    headers = {k: v for k, v in sent.headers.items() if k not in {"content-length", "host"}}
    altered = dict(sent.params) | {"PhoneNumbers": "13900000000"}

    async with httpx.AsyncClient(base_url=f"http://{fake_aliyun.endpoint}") as client:
        replayed = await client.post("/", params=dict(sent.params), headers=headers)
        changed = await client.post("/", params=altered, headers=headers)

    assert replayed.json()["Code"] == "SignatureNonceUsed"
    assert changed.json()["Code"] == "SignatureDoesNotMatch"
    assert len(fake_aliyun.messages) == 1


async def test_wrong_secret_is_refused_by_the_signature_check_and_permanent(
    fake_aliyun: FakeAliyunSms,
) -> None:
    notifier = notifier_for(fake_aliyun, access_key_secret="not-the-secret")

    with pytest.raises(PermanentSendError, match="SignatureDoesNotMatch") as caught:
        await notifier.send(sms())

    [request] = fake_aliyun.requests
    assert request.status == 400
    assert not request.signature_ok
    assert fake_aliyun.messages == []
    assert_no_number(str(caught.value))


async def test_unknown_access_key_is_permanent(fake_aliyun: FakeAliyunSms) -> None:
    notifier = notifier_for(fake_aliyun, access_key_id="LTAI-someone-else")

    with pytest.raises(PermanentSendError, match=r"HTTP 404, InvalidAccessKeyId\.NotFound"):
        await notifier.send(sms())


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (200, "isv.BUSINESS_LIMIT_CONTROL"),
        (400, "Throttling.User"),
        (500, "InternalError"),
        (503, "ServiceUnavailable"),
    ],
)
async def test_throttling_and_server_errors_are_retryable(
    fake_aliyun: FakeAliyunSms, status: int, code: str
) -> None:
    fake_aliyun.fail_next(1, status=status, code=code)
    notifier = notifier_for(fake_aliyun)

    with pytest.raises(RetryableSendError, match=code.replace(".", r"\.")):
        await notifier.send(sms())
    delivery = await notifier.send(sms())

    assert delivery.status == "accepted"
    assert len(fake_aliyun.requests) == 2


@pytest.mark.parametrize(
    ("status", "code"),
    [(200, "isv.MOBILE_NUMBER_ILLEGAL"), (200, "isv.OUT_OF_SERVICE"), (400, "MissingParameter")],
)
async def test_refused_messages_are_permanent(
    fake_aliyun: FakeAliyunSms, status: int, code: str
) -> None:
    fake_aliyun.fail_next(1, status=status, code=code)

    with pytest.raises(PermanentSendError, match=code.replace(".", r"\.")):
        await notifier_for(fake_aliyun).send(sms())


async def test_a_template_the_account_does_not_have_is_permanent(
    fake_aliyun: FakeAliyunSms,
) -> None:
    notifier = notifier_for(fake_aliyun, template_code="SMS_999")

    with pytest.raises(PermanentSendError, match=r"isv\.SMS_TEMPLATE_ILLEGAL"):
        await notifier.send(sms())


async def test_missing_template_variables_are_permanent(fake_aliyun: FakeAliyunSms) -> None:
    message = OutboundMessage(
        channel=Channel.SMS, to_phone=TO, to_name="李四", body="", fields={"elder": "张大爷"}
    )

    with pytest.raises(PermanentSendError, match="TEMPLATE_MISSING_PARAMETERS"):
        await notifier_for(fake_aliyun).send(message)


async def test_error_texts_never_carry_the_number(fake_aliyun: FakeAliyunSms) -> None:
    notifier = notifier_for(fake_aliyun)
    fake_aliyun.fail_next(1, status=200, code="isv.BUSINESS_LIMIT_CONTROL", message=f"{LOCAL}流控")
    fake_aliyun.fail_next(1, status=400, code="Throttling.User", message=f"+86 {LOCAL[:3]} x")
    fake_aliyun.fail_next(1, status=500, code="InternalError", message=f"number={LOCAL}")
    fake_aliyun.fail_next(1, status=200, code="isv.MOBILE_NUMBER_ILLEGAL", message=f"号码{TO}非法")

    texts = []
    for _ in range(4):
        with pytest.raises((RetryableSendError, PermanentSendError)) as caught:
            await notifier.send(sms())
        texts.append(str(caught.value))
        assert caught.value.__cause__ is None

    for text in texts:
        assert_no_number(text)
        assert "139****5678" in text


async def test_voice_and_robot_messages_are_refused_without_a_request(
    fake_aliyun: FakeAliyunSms,
) -> None:
    notifier = notifier_for(fake_aliyun)

    for channel in (Channel.VOICE, Channel.ROBOT):
        with pytest.raises(PermanentSendError, match="SMS only") as caught:
            await notifier.send(sms(channel=channel))
        assert_no_number(str(caught.value))

    assert fake_aliyun.requests == []


@pytest.mark.parametrize("number", ["+85291234567", "+8601012345678", "13912345678", "+8612345"])
async def test_numbers_outside_the_mainland_mobile_plan_are_refused(
    fake_aliyun: FakeAliyunSms, number: str
) -> None:
    with pytest.raises(PermanentSendError, match="mainland") as caught:
        await notifier_for(fake_aliyun).send(sms(to=number))

    assert number not in str(caught.value)
    assert fake_aliyun.requests == []


def test_mainland_number_drops_the_country_code() -> None:
    assert mainland_number("+8613800000000") == "13800000000"


async def test_a_message_without_fields_is_refused(fake_aliyun: FakeAliyunSms) -> None:
    message = OutboundMessage(channel=Channel.SMS, to_phone=TO, to_name="李四", body="free text")

    with pytest.raises(PermanentSendError, match="no template fields"):
        await notifier_for(fake_aliyun).send(message)

    assert fake_aliyun.requests == []


async def test_sends_to_a_slow_provider_overlap(fake_aliyun: FakeAliyunSms) -> None:
    fake_aliyun.delay_s = 0.3
    notifier = notifier_for(fake_aliyun, timeout_s=2.0)
    started = time.monotonic()

    await asyncio.gather(*(notifier.send(sms()) for _ in range(4)))

    assert 0.3 <= time.monotonic() - started < 1.0  # four answers in parallel, not one by one
    assert len(fake_aliyun.messages) == 4


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (into the backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


async def test_server_not_listening_is_retryable(closed_port: int) -> None:
    notifier = AliyunSmsNotifier(settings_for(f"127.0.0.1:{closed_port}"))
    started = time.monotonic()

    with pytest.raises(RetryableSendError) as caught:
        await notifier.send(sms())

    assert time.monotonic() - started < 1.0
    assert_no_number(str(caught.value))


async def test_server_that_never_answers_times_out_as_retryable(silent_port: int) -> None:
    notifier = AliyunSmsNotifier(settings_for(f"127.0.0.1:{silent_port}", timeout_s=0.2))
    started = time.monotonic()

    with pytest.raises(RetryableSendError):
        await notifier.send(sms())

    assert time.monotonic() - started < 1.5


def test_incomplete_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="access_key_id"):
        AliyunSmsNotifier(AliyunSettings())
