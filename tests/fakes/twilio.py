"""A fake Twilio REST API on loopback: Messages and Calls, with Twilio's auth and error shapes.

It also plays Twilio's side of webhooks (tests/fakes/twilio_webhooks.py): a created call can be
answered or left unanswered, a message delivered or not, an SMS received, each posted to the app
signed like Twilio signs. The blocking methods must not run on the app's event loop; tests on the
loop use the `a...` variants.

Tests use it as a context manager; by hand: `python -m tests.fakes.twilio --port 8990` and point
the gateway's `[twilio] api_base_url` at the printed URL.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import contextlib
import hmac
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.fakes.loopback import LoopbackServer
from tests.fakes.twilio_resources import (
    DEFAULT_CODE,
    call_resource,
    error_payload,
    first_missing,
    message_resource,
)
from tests.fakes.twilio_twiml import Gather, Said, message_texts
from tests.fakes.twilio_webhooks import Callback, CallOutcome, Webhooks

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "DEFAULT_PHONE_NUMBER",
    "CallOutcome",
    "Callback",
    "FakeTwilio",
    "Gather",
    "RecordedRequest",
    "Said",
    "message_texts",
]

DEFAULT_ACCOUNT_SID = "AC" + "c0ffee" * 5 + "42"
DEFAULT_AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
DEFAULT_PHONE_NUMBER = "+15005550006"  # Twilio's magic test number that accepts everything

_RESOURCE_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/(?P<kind>Messages|Calls)\.json$")
_ACCOUNT_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/")


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    account_sid: str | None
    """The account named in the path, if the path names one."""
    auth_ok: bool
    form: Mapping[str, str]
    """Form fields, first value of each."""
    headers: Mapping[str, str]
    raw_body: bytes
    status: int
    """What the fake answered."""
    received_at: float
    """`time.monotonic()` when the request arrived, before any `delay_s`."""


class FakeTwilio(LoopbackServer):
    """A real HTTP server on 127.0.0.1 answering like api.twilio.com for Messages and Calls."""

    def __init__(
        self,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        auth_token: str = DEFAULT_AUTH_TOKEN,
        *,
        port: int = 0,
        delay_s: float = 0.0,
        on_request: Callable[[RecordedRequest], None] | None = None,
        phone_number: str = DEFAULT_PHONE_NUMBER,
        auto_message_status: str | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.phone_number = phone_number
        """The account's number: where inbound SMS are sent to."""
        self.delay_s = delay_s
        """How long each answer takes, like a real provider's response time (may be changed)."""
        self.auto_message_status = auto_message_status
        """Posted for each accepted message with a StatusCallback, right after the answer."""
        self._webhooks = Webhooks(account_sid, auth_token, phone_number)
        self._on_request = on_request
        self._requests: list[RecordedRequest] = []
        self._failures: list[tuple[int, int, str | None]] = []
        self._changed = threading.Condition()
        super().__init__(_handler_for(self), port)

    def fail_next(
        self, n: int = 1, *, status: int = 500, code: int | None = None, message: str | None = None
    ) -> None:
        """Answer the next `n` authenticated requests with Twilio's error JSON."""
        chosen = code if code is not None else DEFAULT_CODE.get(status, 20500)
        with self._changed:
            self._failures.extend([(status, chosen, message)] * n)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._changed:
            return list(self._requests)

    @property
    def messages(self) -> list[RecordedRequest]:
        """Accepted SMS requests."""
        return [r for r in self.requests if r.path.endswith("/Messages.json") and r.status == 201]

    @property
    def calls(self) -> list[RecordedRequest]:
        """Accepted call requests."""
        return [r for r in self.requests if r.path.endswith("/Calls.json") and r.status == 201]

    def wait_for_requests(self, n: int, timeout: float = 2.0) -> list[RecordedRequest]:
        """Block until at least `n` requests have arrived; raise TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._requests) >= n, timeout):
                raise TimeoutError(f"fake Twilio got {len(self._requests)} of {n} requests")
            return list(self._requests)

    @property
    def callbacks(self) -> list[Callback]:
        """Every webhook request the fake made to the app, with the app's answer."""
        return self._webhooks.callbacks

    def wait_for_callbacks(self, n: int, timeout: float = 2.0) -> list[Callback]:
        """Block until at least `n` callbacks were answered; raise TimeoutError otherwise."""
        return self._webhooks.wait_for_callbacks(n, timeout)

    def answer_call(
        self, call_sid: str, digits: str | None = None, *, duration_s: int = 10
    ) -> CallOutcome:
        """The callee picks up, hears the TwiML, presses `digits` if given, and hangs up."""
        return self._webhooks.answer_call(call_sid, digits, duration_s=duration_s)

    def end_call(self, call_sid: str, status: str) -> int | None:
        """The call ends unanswered (no-answer, busy, failed, canceled); callback status."""
        return self._webhooks.end_call(call_sid, status)

    def message_status(self, message_sid: str, status: str, error_code: int | None = None) -> int:
        """Post a message's status (ErrorCode with failed/undelivered) to its StatusCallback."""
        return self._webhooks.message_status(message_sid, status, error_code)

    def inbound_sms(
        self, url: str, from_: str, body: str, to: str | None = None
    ) -> tuple[int, str]:
        """Post an incoming SMS to `url` (To: `phone_number`); the app's status and TwiML."""
        return self._webhooks.inbound_sms(url, from_, body, to or self.phone_number)

    def signature_for(self, url: str, params: Mapping[str, str]) -> str:
        """The `X-Twilio-Signature` Twilio would send with `params` to `url`."""
        return self._webhooks.signature_for(url, params)

    def post_webhook(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        method: str = "POST",
        signature: str | None = None,
        signed: bool = True,
    ) -> Callback:
        """Send a webhook; `signature` forges the header, `signed=False` leaves it out."""
        return self._webhooks.post_webhook(
            url, params, method=method, signature=signature, signed=signed
        )

    async def aanswer_call(
        self, call_sid: str, digits: str | None = None, *, duration_s: int = 10
    ) -> CallOutcome:
        return await asyncio.to_thread(self.answer_call, call_sid, digits, duration_s=duration_s)

    async def aend_call(self, call_sid: str, status: str) -> int | None:
        return await asyncio.to_thread(self.end_call, call_sid, status)

    async def amessage_status(
        self, message_sid: str, status: str, error_code: int | None = None
    ) -> int:
        return await asyncio.to_thread(self.message_status, message_sid, status, error_code)

    async def ainbound_sms(
        self, url: str, from_: str, body: str, to: str | None = None
    ) -> tuple[int, str]:
        return await asyncio.to_thread(self.inbound_sms, url, from_, body, to)

    async def apost_webhook(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        method: str = "POST",
        signature: str | None = None,
        signed: bool = True,
    ) -> Callback:
        return await asyncio.to_thread(
            self.post_webhook, url, params, method=method, signature=signature, signed=signed
        )

    async def await_for_callbacks(self, n: int, timeout: float = 2.0) -> list[Callback]:
        return await asyncio.to_thread(self.wait_for_callbacks, n, timeout)

    def _record(self, request: RecordedRequest) -> None:
        with self._changed:
            self._requests.append(request)
            self._changed.notify_all()
        if self._on_request is not None:
            self._on_request(request)

    def _take_failure(self) -> tuple[int, int, str | None] | None:
        with self._changed:
            return self._failures.pop(0) if self._failures else None

    def _auth_ok(self, header: str | None) -> bool:
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self.account_sid) and hmac.compare_digest(
            password, self.auth_token
        )

    def _answer(
        self,
        method: str,
        path: str,
        sid: str | None,
        auth_ok: bool,
        fields: Mapping[str, list[str]],
    ) -> tuple[int, dict[str, Any]]:
        form = {key: values[0] for key, values in fields.items()}
        if not auth_ok:
            return error_payload(401, 20003, path, form)
        match = _RESOURCE_PATH.match(path)
        # Credentials for one account do not open another: Twilio answers "not found".
        if match is None or sid != self.account_sid:
            return error_payload(404, 20404, path, form)
        if method != "POST":
            return error_payload(405, 20004, path, form)
        failure = self._take_failure()
        if failure is not None:
            status, code, message = failure
            return error_payload(status, code, path, form, message)
        if match["kind"] == "Messages":
            missing = first_missing(form, [("To", 21604), ("From", 21603), ("Body", 21602)])
            if missing:
                return error_payload(400, missing, path, form)
            sms = message_resource(sid, form)
            self._webhooks.remember_message(sms["sid"], form)
            return 201, sms
        missing = first_missing(form, [("To", 21201), ("From", 21213)])
        if not missing and not ("Twiml" in form or "Url" in form or "ApplicationSid" in form):
            missing = 21205
        if missing:
            return error_payload(400, missing, path, form)
        call = call_resource(sid, form)
        # The REST client sends a list of events as repeated fields; a hand-made form may not.
        self._webhooks.remember_call(call["sid"], form, fields.get("StatusCallbackEvent", []))
        return 201, call

    def _after_answer(self, status: int, payload: Mapping[str, Any]) -> None:
        sid = str(payload.get("sid", ""))
        if status == 201 and sid.startswith("SM") and self.auto_message_status:
            self._webhooks.auto_message_status(sid, self.auto_message_status)


def _handler_for(fake: FakeTwilio) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            received_at = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
            form = {key: values[0] for key, values in fields.items()}
            account = _ACCOUNT_PATH.match(path)
            sid = account["sid"] if account else None
            auth_ok = fake._auth_ok(self.headers.get("Authorization"))
            status, payload = fake._answer(self.command, path, sid, auth_ok, fields)
            # Recorded before answering, so a test that saw the response also sees the record.
            fake._record(
                RecordedRequest(
                    method=self.command,
                    path=path,
                    account_sid=sid,
                    auth_ok=auth_ok,
                    form=form,
                    headers=dict(self.headers.items()),
                    raw_body=raw,
                    status=status,
                    received_at=received_at,
                )
            )
            if fake.delay_s > 0:
                time.sleep(fake.delay_s)  # each request has its own thread: answers overlap
            body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Twilio-Request-Id", "RQ" + secrets.token_hex(16))
            if status == 401:
                self.send_header("WWW-Authenticate", 'Basic realm="Twilio API"')
            self.end_headers()
            self.wfile.write(body)
            fake._after_answer(status, payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # requests are recorded (and printed by the CLI) instead

    return Handler


def _print_request(request: RecordedRequest) -> None:
    kind = request.path.rsplit("/", 1)[-1].removesuffix(".json")
    text = request.form.get("Body") or request.form.get("Twiml") or request.form.get("Url", "")
    print(
        f"{request.status} {request.method} {kind} auth={'ok' if request.auth_ok else 'BAD'} "
        f"to={request.form.get('To', '-')} from={request.form.get('From', '-')}: {text}",
        flush=True,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake Twilio REST API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=8990, help="0 picks a free port")
    parser.add_argument("--sid", default=DEFAULT_ACCOUNT_SID, help="account SID to accept")
    parser.add_argument("--token", default=DEFAULT_AUTH_TOKEN, help="auth token to accept")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="time to answer a request")
    parser.add_argument(
        "--auto-message-status",
        choices=["sent", "delivered", "undelivered", "failed"],
        help="post this status to each message's StatusCallback right after accepting it",
    )
    args = parser.parse_args(argv)
    with FakeTwilio(
        args.sid,
        args.token,
        port=args.port,
        delay_s=args.delay_ms / 1000,
        on_request=_print_request,
        auto_message_status=args.auto_message_status,
    ) as fake:
        print(f"fake Twilio for {args.sid} at {fake.base_url} (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
