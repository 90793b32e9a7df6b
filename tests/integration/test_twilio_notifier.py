"""TwilioNotifier against a fake Twilio API served over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest

from gateway.alerts.notifiers.base import (
    Channel,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
)
from gateway.alerts.notifiers.twilio import TwilioNotifier
from gateway.config import TwilioSettings
from tests.fakes.twilio import FakeTwilio

FROM = "+8675500000000"
TO = "+8613912345678"
ZH_BODY = "紧急！【居家关爱】张大爷家（幸福路1号）跌倒报警，请立即联系老人。回复1确认"


def settings_for(base_url: str, fake: FakeTwilio | None = None, **changes: Any) -> TwilioSettings:
    values: dict[str, Any] = {
        "account_sid": fake.account_sid if fake else "AC" + "0" * 32,
        "auth_token": fake.auth_token if fake else "token",
        "from": FROM,
        "api_base_url": base_url,
        "timeout_s": 0.5,
    }
    return TwilioSettings(**(values | changes))


def notifier_for(fake: FakeTwilio, **changes: Any) -> TwilioNotifier:
    return TwilioNotifier(settings_for(fake.base_url, fake, **changes))


def sms(body: str = ZH_BODY) -> OutboundMessage:
    return OutboundMessage(channel=Channel.SMS, to_phone=TO, to_name="李四", body=body)


async def test_sms_reaches_the_account_with_basic_auth_and_utf8_body(
    fake_twilio: FakeTwilio,
) -> None:
    delivery = await notifier_for(fake_twilio).send(sms())

    [request] = fake_twilio.messages
    assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
    assert request.auth_ok
    credentials = f"{fake_twilio.account_sid}:{fake_twilio.auth_token}".encode()
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(credentials).decode()
    assert request.form == {"To": TO, "From": FROM, "Body": ZH_BODY}
    assert urlencode({"Body": ZH_BODY}).encode() in request.raw_body  # percent-encoded UTF-8
    assert delivery.provider == "twilio"
    assert delivery.provider_id is not None
    assert delivery.provider_id.startswith("SM")
    assert len(delivery.provider_id) == 34
    assert delivery.status == "queued"


async def test_voice_call_posts_twiml_with_the_body_escaped(fake_twilio: FakeTwilio) -> None:
    body = "张大爷 <家> & 报警"
    message = OutboundMessage(channel=Channel.VOICE, to_phone=TO, to_name="李四", body=body)

    delivery = await notifier_for(fake_twilio).send(message)

    [request] = fake_twilio.calls
    assert request.form["To"] == TO
    assert request.form["From"] == FROM
    assert request.form["Twiml"] == (
        '<Response><Say language="cmn-CN">张大爷 &lt;家&gt; &amp; 报警</Say></Response>'
    )
    assert delivery.provider_id is not None
    assert delivery.provider_id.startswith("CA")


async def test_english_voice_call_is_spoken_in_english(fake_twilio: FakeTwilio) -> None:
    message = OutboundMessage(
        channel=Channel.VOICE, to_phone=TO, to_name="Li", body="Fall detected, press 1"
    )

    await notifier_for(fake_twilio).send(message)

    assert 'language="en-US"' in fake_twilio.calls[0].form["Twiml"]


async def test_twilio_region_in_the_environment_does_not_redirect_requests(
    fake_twilio: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWILIO_REGION", "ie1")
    monkeypatch.setenv("TWILIO_EDGE", "dublin")

    await notifier_for(fake_twilio).send(sms())

    assert len(fake_twilio.messages) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_and_throttling_are_retryable(
    fake_twilio: FakeTwilio, status: int
) -> None:
    fake_twilio.fail_next(1, status=status)
    notifier = notifier_for(fake_twilio)

    with pytest.raises(RetryableSendError):
        await notifier.send(sms())
    delivery = await notifier.send(sms())

    assert delivery.status == "queued"
    assert len(fake_twilio.requests) == 2


async def test_invalid_number_is_permanent_and_the_error_hides_the_number(
    fake_twilio: FakeTwilio,
) -> None:
    fake_twilio.fail_next(1, status=400, code=21211)

    with pytest.raises(PermanentSendError) as caught:
        await notifier_for(fake_twilio).send(sms())

    text = str(caught.value)
    assert "21211" in text
    assert "not a valid phone number" in text
    assert TO not in text
    assert TO[1:] not in text
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


async def test_wrong_auth_token_is_permanent(fake_twilio: FakeTwilio) -> None:
    notifier = notifier_for(fake_twilio, auth_token="not-the-token")

    with pytest.raises(PermanentSendError, match="20003"):
        await notifier.send(sms())

    [request] = fake_twilio.requests
    assert request.status == 401
    assert not request.auth_ok
    assert fake_twilio.messages == []


async def test_sends_to_a_slow_provider_overlap(fake_twilio: FakeTwilio) -> None:
    fake_twilio.delay_s = 0.3
    notifier = notifier_for(fake_twilio, timeout_s=2.0)
    started = time.monotonic()

    await asyncio.gather(*(notifier.send(sms()) for _ in range(4)))

    assert 0.3 <= time.monotonic() - started < 1.0  # four answers in parallel, not one by one
    assert len(fake_twilio.messages) == 4
    assert all(r.received_at - started < 0.25 for r in fake_twilio.messages)


async def test_a_send_does_not_wait_for_a_thread_of_the_event_loops_default_pool(
    fake_twilio: FakeTwilio,
) -> None:
    # Other blocking work (the MQTT reader waits there) may hold every thread of that pool.
    release = threading.Event()
    loop = asyncio.get_running_loop()
    blockers = [loop.run_in_executor(None, release.wait, 5.0) for _ in range(40)]
    try:
        delivery = await asyncio.wait_for(notifier_for(fake_twilio).send(sms()), 2.0)
    finally:
        release.set()
        await asyncio.gather(*blockers)

    assert delivery.status == "queued"


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
    notifier = TwilioNotifier(settings_for(f"http://127.0.0.1:{closed_port}"))
    started = time.monotonic()

    with pytest.raises(RetryableSendError, match="ConnectionError"):
        await notifier.send(sms())

    assert time.monotonic() - started < 1.0


async def test_server_that_never_answers_times_out_as_retryable(silent_port: int) -> None:
    notifier = TwilioNotifier(settings_for(f"http://127.0.0.1:{silent_port}", timeout_s=0.2))
    started = time.monotonic()

    with pytest.raises(RetryableSendError, match="Timeout"):
        await notifier.send(sms())

    assert time.monotonic() - started < 1.0


def test_incomplete_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="account_sid"):
        TwilioNotifier(TwilioSettings())
