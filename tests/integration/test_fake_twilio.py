"""The fake Twilio's webhooks, checked by an app that validates them as a real one must.

The app is Starlette under uvicorn on the test's event loop, as the gateway runs; it checks
`X-Twilio-Signature` with the twilio package's own `RequestValidator` and answers TwiML.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from tests.fakes.twilio import CallOutcome, FakeTwilio, Said, message_texts

CALLEE = "+8613912345678"
CALLER = "+8675500000000"
ZH_ALERT = "张大爷家跌倒报警，确认请按1"
ZH_THANKS = "已确认，谢谢"


@dataclass
class Seen:
    """One request the app received: its full URL, its form, and whether the signature held."""

    url: str
    params: dict[str, str]
    valid: bool


@dataclass
class App:
    """A webhook endpoint like the gateway's: validates, records, answers TwiML."""

    auth_token: str
    base_url: str = ""
    seen: list[Seen] = field(default_factory=list)

    async def handle(self, request: Request) -> Response:
        form = await request.form()
        params = {key: str(value) for key, value in form.items()}
        url = str(request.url)
        signature = request.headers.get("X-Twilio-Signature", "")
        valid = RequestValidator(self.auth_token).validate(url, params, signature)
        self.seen.append(Seen(url, params, valid))
        if not valid:
            return Response("forged", status_code=403)
        if request.url.path == "/broken":
            return Response("Internal Server Error", status_code=500)
        return Response(self._twiml(request, params), media_type="application/xml")

    def _twiml(self, request: Request, params: dict[str, str]) -> str:
        path = request.url.path
        if path == "/twiml":  # a call started by Url: the Gather's action is relative
            return (
                '<Response><Gather numDigits="1" action="voice?n=3">'
                f'<Say language="cmn-CN">{ZH_ALERT}</Say></Gather></Response>'
            )
        if path == "/voice":
            return f'<Response><Say language="cmn-CN">{ZH_THANKS}</Say></Response>'
        if path == "/sms":
            return f"<Response><Message>收到：{params['Body']}</Message></Response>"
        return ""  # status callbacks: Twilio ignores the body

    def only(self, path: str) -> Seen:
        [seen] = [s for s in self.seen if s.url.split("?")[0].endswith(path)]
        return seen


@pytest.fixture
async def app(fake_twilio: FakeTwilio) -> AsyncIterator[App]:
    app = App(fake_twilio.auth_token)
    routes = [Route("/{path:path}", app.handle, methods=["GET", "POST"])]
    config = uvicorn.Config(
        Starlette(routes=routes),
        host="127.0.0.1",
        port=0,
        lifespan="off",
        ws="none",
        log_level="warning",
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(200):
        if server.started:
            break
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    app.base_url = f"http://127.0.0.1:{port}"
    yield app
    server.should_exit = True
    await asyncio.wait_for(task, 5)


def client_for(fake: FakeTwilio) -> Any:
    client: Any = Client(fake.account_sid, fake.auth_token)
    client.edge = None
    client.region = None
    client.api.base_url = fake.base_url
    return client


def gather_twiml(action: str) -> str:
    return (
        f'<Response><Say language="cmn-CN">{ZH_ALERT}</Say>'
        f'<Gather numDigits="1" action="{action}"/>'
        '<Say language="cmn-CN">没有收到按键</Say></Response>'
    )


async def create_call(fake: FakeTwilio, **options: Any) -> str:
    call = await asyncio.to_thread(
        client_for(fake).calls.create, to=CALLEE, from_=CALLER, **options
    )
    return str(call.sid)


async def create_sms(fake: FakeTwilio, **options: Any) -> str:
    message = await asyncio.to_thread(
        client_for(fake).messages.create, to=CALLEE, from_=CALLER, body=ZH_ALERT, **options
    )
    return str(message.sid)


async def test_a_key_press_reaches_the_gather_action_signed_with_its_query_then_completed(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_call(
        fake_twilio,
        twiml=gather_twiml(f"{app.base_url}/voice?n=7"),
        status_callback=f"{app.base_url}/status",
    )

    outcome = await fake_twilio.aanswer_call(sid, "1")

    digits, completed = app.seen
    assert digits.url == f"{app.base_url}/voice?n=7"
    assert digits.valid
    assert digits.params["Digits"] == "1"
    assert digits.params["FinishedOnKey"] == ""
    assert digits.params["CallSid"] == sid
    assert digits.params["CallStatus"] == "in-progress"
    assert digits.params["Direction"] == "outbound-api"
    assert (digits.params["From"], digits.params["To"]) == (CALLER, CALLEE)
    assert (digits.params["Caller"], digits.params["Called"]) == (CALLER, CALLEE)
    assert completed.url == f"{app.base_url}/status"
    assert completed.valid
    assert completed.params["CallStatus"] == "completed"
    assert completed.params["CallDuration"] == "10"
    assert completed.params["CallbackSource"] == "call-progress-events"
    assert completed.params["SequenceNumber"] == "0"
    assert completed.params["AccountSid"] == fake_twilio.account_sid
    # The rest of the first document is skipped: Twilio follows the action's TwiML.
    assert outcome.said == (Said(ZH_ALERT, "cmn-CN"), Said(ZH_THANKS, "cmn-CN"))
    assert outcome.gather is not None
    assert outcome.gather.num_digits == 1
    assert outcome.gather_url == f"{app.base_url}/voice?n=7"
    assert outcome.gather_status == 200
    assert outcome.gather_body is not None
    assert ZH_THANKS in outcome.gather_body
    assert outcome.status_callback_status == 200
    assert [c.url for c in fake_twilio.callbacks] == [digits.url, completed.url]


async def test_no_key_press_posts_nothing_for_the_gather_and_falls_through(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_call(
        fake_twilio,
        twiml=gather_twiml(f"{app.base_url}/voice"),
        status_callback=f"{app.base_url}/status",
    )

    outcome = await fake_twilio.aanswer_call(sid)

    assert [s.params["CallStatus"] for s in app.seen] == ["completed"]
    assert outcome.texts == [ZH_ALERT, "没有收到按键"]
    assert outcome.languages == ["cmn-CN", "cmn-CN"]
    assert outcome.gather_url is None


async def test_an_action_that_fails_is_reported_and_the_call_still_completes(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_call(
        fake_twilio,
        twiml=gather_twiml(f"{app.base_url}/broken"),
        status_callback=f"{app.base_url}/status",
    )

    outcome = await fake_twilio.aanswer_call(sid, "1")

    assert outcome.gather_status == 500
    assert outcome.texts == [ZH_ALERT]  # Twilio would apologise for an application error
    assert outcome.status_callback_status == 200


async def test_a_call_by_url_fetches_its_twiml_signed_and_resolves_a_relative_action(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_call(fake_twilio, url=f"{app.base_url}/twiml?alert=5")

    outcome = await fake_twilio.aanswer_call(sid, "1")

    fetch, digits = app.seen
    assert fetch.url == f"{app.base_url}/twiml?alert=5"
    assert fetch.valid
    assert fetch.params["CallStatus"] == "in-progress"
    assert digits.url == f"{app.base_url}/voice?n=3"
    assert digits.valid
    assert outcome.twiml_status == 200
    assert outcome.texts == [ZH_ALERT, ZH_THANKS]  # the Say nested in the Gather is heard too
    assert outcome.status_callback_status is None  # no StatusCallback, no callback


async def test_a_relative_action_in_inline_twiml_is_refused_like_twilio_would(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_call(fake_twilio, twiml=gather_twiml("voice"))

    with pytest.raises(ValueError, match="absolute URL"):
        await fake_twilio.aanswer_call(sid, "1")

    assert app.seen == []


async def test_an_unanswered_call_reports_its_subscribed_events_in_sequence(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_call(
        fake_twilio,
        twiml=gather_twiml(f"{app.base_url}/voice"),
        status_callback=f"{app.base_url}/status",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )

    status = await fake_twilio.aend_call(sid, "no-answer")

    assert status == 200
    assert [(s.params["CallStatus"], s.params["SequenceNumber"]) for s in app.seen] == [
        ("initiated", "0"),
        ("ringing", "1"),
        ("no-answer", "2"),
    ]
    assert app.seen[-1].params["CallDuration"] == "0"
    assert all(s.valid for s in app.seen)
    with pytest.raises(ValueError, match="already ended"):
        await fake_twilio.aanswer_call(sid)


async def test_an_undelivered_message_reports_its_error_code(
    fake_twilio: FakeTwilio, app: App
) -> None:
    sid = await create_sms(fake_twilio, status_callback=f"{app.base_url}/sms-status?alert=9")

    sent = await fake_twilio.amessage_status(sid, "sent")
    undelivered = await fake_twilio.amessage_status(sid, "undelivered", 30003)

    assert (sent, undelivered) == (200, 200)
    first, second = app.seen
    assert first.valid
    assert second.valid
    assert second.url == f"{app.base_url}/sms-status?alert=9"
    assert first.params == {
        "AccountSid": fake_twilio.account_sid,
        "ApiVersion": "2010-04-01",
        "From": CALLER,
        "To": CALLEE,
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": "sent",
        "SmsStatus": "sent",
    }
    assert second.params["MessageStatus"] == "undelivered"
    assert second.params["ErrorCode"] == "30003"


async def test_auto_mode_posts_the_status_right_after_accepting_a_message(
    fake_twilio: FakeTwilio, app: App
) -> None:
    fake_twilio.auto_message_status = "delivered"
    sid = await create_sms(fake_twilio, status_callback=f"{app.base_url}/sms-status")
    await create_sms(fake_twilio)  # asked for no callback: none is posted

    [callback] = await fake_twilio.await_for_callbacks(1)

    assert callback.params["MessageSid"] == sid
    assert callback.params["MessageStatus"] == "delivered"
    assert callback.status == 200
    await asyncio.sleep(0.1)
    assert len(fake_twilio.callbacks) == 1


async def test_an_inbound_sms_is_posted_signed_and_the_reply_read_from_the_twiml(
    fake_twilio: FakeTwilio, app: App
) -> None:
    status, body = await fake_twilio.ainbound_sms(f"{app.base_url}/sms", CALLEE, "1")

    assert status == 200
    assert message_texts(body) == ["收到：1"]
    [seen] = app.seen
    assert seen.valid
    assert seen.params["From"] == CALLEE
    assert seen.params["To"] == fake_twilio.phone_number
    assert seen.params["Body"] == "1"
    assert seen.params["NumMedia"] == "0"
    assert seen.params["NumSegments"] == "1"
    assert seen.params["FromCountry"] == "CN"
    assert seen.params["MessageSid"] == seen.params["SmsMessageSid"]
    assert seen.params["MessageSid"].startswith("SM")


async def test_a_forged_or_missing_signature_fails_validation(
    fake_twilio: FakeTwilio, app: App
) -> None:
    url = f"{app.base_url}/sms"
    params = {"From": CALLEE, "To": fake_twilio.phone_number, "Body": "1"}

    forged = await fake_twilio.apost_webhook(url, params, signature="bad")
    missing = await fake_twilio.apost_webhook(url, params, signed=False)
    other_url = await fake_twilio.apost_webhook(
        url, params, signature=fake_twilio.signature_for(f"{url}?x=1", params)
    )
    genuine = await fake_twilio.apost_webhook(url, params)

    assert [forged.status, missing.status, other_url.status, genuine.status] == [
        403,
        403,
        403,
        200,
    ]
    assert missing.signature is None
    assert genuine.signature == fake_twilio.signature_for(url, params)
    assert [s.valid for s in app.seen] == [False, False, False, True]


def test_blocking_methods_work_from_a_thread_other_than_the_apps(
    fake_twilio: FakeTwilio,
) -> None:
    # No app listens: the call has no StatusCallback and inline TwiML, so nothing is posted.
    client = client_for(fake_twilio)
    call = client.calls.create(
        to=CALLEE, from_=CALLER, twiml='<Response><Say language="cmn-CN">你好</Say></Response>'
    )

    outcome = fake_twilio.answer_call(call.sid, "1")

    assert isinstance(outcome, CallOutcome)
    assert outcome.said == (Said("你好", "cmn-CN"),)
    assert outcome.gather is None
    assert fake_twilio.callbacks == []
