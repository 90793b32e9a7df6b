"""The fake Twilio's other direction: signed webhooks from Twilio to the app under test.

Calls and messages created through the fake REST API are remembered here; a test then plays the
callee (`answer_call`, `end_call`), the carrier (`message_status`) or a texting user
(`inbound_sms`). Every request is form-encoded and signed with Twilio's real algorithm
(`X-Twilio-Signature`, via `twilio.request_validator.RequestValidator`), with the parameter
names Twilio sends. Requests are blocking: call them from a thread other than the app's.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

import httpx
from twilio.request_validator import RequestValidator

from tests.fakes.twilio_resources import API_VERSION, segments, timestamp
from tests.fakes.twilio_twiml import (
    Gather,
    Said,
    action_url,
    keys_pressed,
    parse_gather,
    spoken,
    verbs,
)

CALL_END_STATUSES = frozenset({"no-answer", "busy", "failed", "canceled"})
MESSAGE_STATUSES = frozenset(
    {"queued", "sending", "sent", "delivered", "undelivered", "failed", "read"}
)
_MESSAGE_FAILURES = frozenset({"undelivered", "failed"})
_UNKNOWN_MESSAGE_ERROR = 30008  # what Twilio reports when the carrier gives no reason
# StatusCallbackEvent names and the CallStatus each one reports; terminal statuses
# (completed, busy, no-answer, failed, canceled) all come under the "completed" event.
_PROGRESS = {"initiated": "initiated", "ringing": "ringing", "answered": "in-progress"}
# Calling codes for the *Country parameters (Twilio sends empty City/State/Zip when unknown).
# No code here is a prefix of another, so the first match is the only one.
_COUNTRIES = {"+1": "US", "+44": "GB", "+852": "HK", "+86": "CN", "+886": "TW"}


@dataclass(frozen=True, slots=True)
class Callback:
    """One request the fake made to the app, and the app's answer."""

    url: str
    """The full URL requested (query string included), as signed."""
    method: str
    params: Mapping[str, str]
    """Form fields (for GET: the query parameters Twilio added)."""
    signature: str | None
    """The `X-Twilio-Signature` header sent, None if none was."""
    status: int
    body: str


@dataclass(frozen=True, slots=True)
class CallOutcome:
    """What happened when the callee picked up."""

    call_sid: str
    twiml: str
    """The document the call started with (inline `Twiml`, or the app's answer to `Url`)."""
    twiml_status: int | None
    """The app's status for the `Url` fetch; None for inline `Twiml`."""
    said: tuple[Said, ...]
    """Every `<Say>` executed, in order, including those of the Gather action's answer."""
    gather: Gather | None
    """The first `<Gather>` of the starting document."""
    gather_url: str | None
    """Where the digits were posted (relative actions resolved), None if nowhere."""
    gather_status: int | None
    gather_body: str | None
    """The TwiML the app answered the digits with."""
    status_callback_status: int | None
    """The app's status for the `completed` callback; None if none was posted."""

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.said]

    @property
    def languages(self) -> list[str | None]:
        return [s.language for s in self.said]


@dataclass(slots=True)
class _Call:
    sid: str
    form: Mapping[str, str]
    events: frozenset[str]
    sequence: int = 0
    ended: bool = False


class Webhooks:
    """Twilio's requests to the app: signing, sending, recording, and per-resource state."""

    def __init__(
        self, account_sid: str, auth_token: str, phone_number: str, timeout_s: float = 10.0
    ) -> None:
        self.account_sid = account_sid
        self.phone_number = phone_number
        self._validator = RequestValidator(auth_token)
        self._timeout_s = timeout_s
        self._calls: dict[str, _Call] = {}
        self._message_forms: dict[str, Mapping[str, str]] = {}
        self._callbacks: list[Callback] = []
        self._changed = threading.Condition()

    def remember_call(self, sid: str, form: Mapping[str, str], events: Iterable[str]) -> None:
        """Keep the form a call was created with; `events` are its StatusCallbackEvent values."""
        subscribed = frozenset(e for value in events for e in value.split()) or {"completed"}
        with self._changed:
            self._calls[sid] = _Call(sid, dict(form), frozenset(subscribed))

    def remember_message(self, sid: str, form: Mapping[str, str]) -> None:
        with self._changed:
            self._message_forms[sid] = dict(form)

    @property
    def callbacks(self) -> list[Callback]:
        with self._changed:
            return list(self._callbacks)

    def wait_for_callbacks(self, n: int, timeout: float = 2.0) -> list[Callback]:
        """Block until at least `n` callbacks were answered; raise TimeoutError otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._callbacks) >= n, timeout):
                raise TimeoutError(f"fake Twilio made {len(self._callbacks)} of {n} callbacks")
            return list(self._callbacks)

    def signature_for(self, url: str, params: Mapping[str, str]) -> str:
        """The `X-Twilio-Signature` Twilio would send with `params` to `url`."""
        return str(self._validator.compute_signature(url, params))

    def post_webhook(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        method: str = "POST",
        signature: str | None = None,
        signed: bool = True,
    ) -> Callback:
        """Send a webhook as Twilio does; `signature` forges one, `signed=False` sends none."""
        body = b""
        if method.upper() == "GET":
            # Twilio puts the parameters in the query string and signs that URL alone.
            url = f"{url}{'&' if urlsplit(url).query else '?'}{urlencode(params)}"
            signed_params: Mapping[str, str] = {}
        else:
            body = urlencode(params).encode("utf-8")
            signed_params = params
        if signature is None and signed:
            signature = self.signature_for(url, signed_params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "User-Agent": "TwilioProxy/1.1",
            "I-Twilio-Idempotency-Token": secrets.token_hex(16),
        }
        if signature is not None:
            headers["X-Twilio-Signature"] = signature
        response = httpx.request(
            method.upper(), url, content=body or None, headers=headers, timeout=self._timeout_s
        )
        callback = Callback(
            url=url,
            method=method.upper(),
            params=dict(params),
            signature=signature,
            status=response.status_code,
            body=response.text,
        )
        with self._changed:
            self._callbacks.append(callback)
            self._changed.notify_all()
        return callback

    def answer_call(
        self, call_sid: str, digits: str | None = None, *, duration_s: int = 10
    ) -> CallOutcome:
        """The callee picks up, listens, presses `digits` (if any) and hangs up."""
        call = self._open_call(call_sid)
        for event in ("initiated", "ringing", "answered"):
            self._progress(call, event)
        twiml, twiml_url, twiml_status = self._fetch_twiml(call)
        said: list[Said] = []
        gather: Gather | None = None
        gather_url = gather_status = gather_body = None
        for verb in verbs(twiml) if _ok(twiml_status) else []:
            if verb.tag == "Say":
                said.append(spoken(verb))
            elif verb.tag == "Gather" and gather is None:
                gather = parse_gather(verb)
                said.extend(spoken(say) for say in verb.iter("Say"))
                if digits is not None:
                    gather_url = action_url(gather, twiml_url)
                    params = self._voice_params(call, "in-progress") | keys_pressed(gather, digits)
                    answer = self.post_webhook(gather_url, params, method=gather.method)
                    gather_status, gather_body = answer.status, answer.body
                    # Twilio carries on with the action's TwiML, not the rest of this document.
                    following = verbs(answer.body) if _ok(answer.status) else []
                    said.extend(spoken(say) for say in following if say.tag == "Say")
                    break
        completed = self._finish(call, "completed", duration_s)
        return CallOutcome(
            call_sid=call_sid,
            twiml=twiml,
            twiml_status=twiml_status,
            said=tuple(said),
            gather=gather,
            gather_url=gather_url,
            gather_status=gather_status,
            gather_body=gather_body,
            status_callback_status=completed.status if completed else None,
        )

    def end_call(self, call_sid: str, status: str) -> int | None:
        """The call ends unanswered; the app's status for the callback, None if none was sent."""
        if status not in CALL_END_STATUSES:
            raise ValueError(f"{status!r} is not one of {sorted(CALL_END_STATUSES)}")
        call = self._open_call(call_sid)
        self._progress(call, "initiated")
        if status in ("no-answer", "canceled"):
            self._progress(call, "ringing")
        callback = self._finish(call, status, 0)
        return callback.status if callback else None

    def message_status(self, message_sid: str, status: str, error_code: int | None = None) -> int:
        """Post a message's status to its StatusCallback; the app's response status."""
        return self._post_message_status(message_sid, status, error_code).status

    def inbound_sms(
        self, url: str, from_: str, body: str, to: str | None = None
    ) -> tuple[int, str]:
        """Post what Twilio posts to an incoming-message webhook; the app's status and body."""
        to = to or self.phone_number
        sid = "SM" + secrets.token_hex(16)
        params = {
            "ToCountry": _country(to),
            "ToState": "",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "ToCity": "",
            "FromZip": "",
            "SmsSid": sid,
            "FromState": "",
            "SmsStatus": "received",
            "FromCity": "",
            "Body": body,
            "FromCountry": _country(from_),
            "To": to,
            "ToZip": "",
            "NumSegments": str(segments(body)),
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_,
            "ApiVersion": API_VERSION,
        }
        callback = self.post_webhook(url, params)
        return callback.status, callback.body

    def _post_message_status(
        self, message_sid: str, status: str, error_code: int | None
    ) -> Callback:
        if status not in MESSAGE_STATUSES:
            raise ValueError(f"{status!r} is not one of {sorted(MESSAGE_STATUSES)}")
        if error_code is not None and status not in _MESSAGE_FAILURES:
            raise ValueError(f"Twilio sends an ErrorCode only with {sorted(_MESSAGE_FAILURES)}")
        with self._changed:
            form = self._message_forms.get(message_sid)
        if form is None:
            raise KeyError(f"fake Twilio created no message {message_sid}")
        url = form.get("StatusCallback")
        if not url:
            raise ValueError(f"message {message_sid} has no StatusCallback: Twilio posts nothing")
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": form.get("From", ""),
            "To": form.get("To", ""),
            "MessageSid": message_sid,
            "SmsSid": message_sid,
            "MessageStatus": status,
            "SmsStatus": status,
        }
        if status in _MESSAGE_FAILURES:
            params["ErrorCode"] = str(error_code or _UNKNOWN_MESSAGE_ERROR)
        return self.post_webhook(url, params)

    def auto_message_status(self, message_sid: str, status: str) -> None:
        """Post `status` if the message asked for callbacks; a failed post is recorded as 0."""
        with self._changed:
            form = self._message_forms.get(message_sid, {})
        if not form.get("StatusCallback"):
            return
        try:
            self._post_message_status(message_sid, status, None)
        except httpx.HTTPError as exc:
            # Twilio does not retry a status callback; the test sees the failure in `callbacks`.
            with self._changed:
                self._callbacks.append(
                    Callback(form["StatusCallback"], "POST", {}, None, 0, repr(exc))
                )
                self._changed.notify_all()

    def _open_call(self, call_sid: str) -> _Call:
        with self._changed:
            call = self._calls.get(call_sid)
            if call is None:
                raise KeyError(f"fake Twilio created no call {call_sid}")
            if call.ended:
                raise ValueError(f"call {call_sid} has already ended")
            call.ended = True
            return call

    def _voice_params(self, call: _Call, status: str) -> dict[str, str]:
        to, from_ = call.form.get("To", ""), call.form.get("From", "")
        return {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call.sid,
            "CallStatus": status,
            "Called": to,
            "CalledCountry": _country(to),
            "Caller": from_,
            "CallerCountry": _country(from_),
            "Direction": "outbound-api",
            "From": from_,
            "FromCountry": _country(from_),
            "To": to,
            "ToCountry": _country(to),
        }

    def _fetch_twiml(self, call: _Call) -> tuple[str, str | None, int | None]:
        if "Twiml" in call.form:
            return call.form["Twiml"], None, None
        url = call.form["Url"]
        method = call.form.get("Method", "POST")
        answer = self.post_webhook(url, self._voice_params(call, "in-progress"), method=method)
        return answer.body, url, answer.status

    def _progress(self, call: _Call, event: str) -> None:
        if event in call.events:
            self._status_callback(call, _PROGRESS[event], {})

    def _finish(self, call: _Call, status: str, duration_s: int) -> Callback | None:
        if "completed" not in call.events:
            return None
        return self._status_callback(call, status, {"CallDuration": str(duration_s)})

    def _status_callback(
        self, call: _Call, status: str, extra: Mapping[str, str]
    ) -> Callback | None:
        url = call.form.get("StatusCallback")
        if not url:
            return None
        params = self._voice_params(call, status) | dict(extra)
        params |= {
            "Timestamp": timestamp(),
            "SequenceNumber": str(call.sequence),
            "CallbackSource": "call-progress-events",
        }
        call.sequence += 1
        return self.post_webhook(url, params, method=call.form.get("StatusCallbackMethod", "POST"))


def _ok(status: int | None) -> bool:
    # Twilio plays "an application error has occurred" for anything but a 2xx document.
    return status is None or 200 <= status < 300


def _country(number: str) -> str:
    return next((c for code, c in _COUNTRIES.items() if number.startswith(code)), "")
