"""Twilio SMS (Messages API) and voice calls (Calls API with inline TwiML).

With the gateway's public URL known, every message and call carries a `StatusCallback`, so a
message that is not delivered or a call nobody answers is reported at once, and a call that asks
for a key (press 1) gathers it with an explicit `action` on the gateway's voice webhook.
"""

from __future__ import annotations

import asyncio
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from xml.sax.saxutils import escape

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from gateway.alerts.notifiers.base import (
    Channel,
    Delivery,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
)
from gateway.config import TwilioSettings
from gateway.privacy import mask_phone

__all__ = ["TwilioNotifier", "voice_twiml"]

# Any CJK ideograph means the text is Chinese; our templates never mix scripts otherwise.
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Characters XML 1.0 forbids even when escaped; one would make Twilio reject the whole call.
_XML_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Twilio's error messages quote the number ("The 'To' number +86... is not valid"), in any format.
_PHONE_LIKE = re.compile(r"\+?\d[\d \-]{5,}\d")
# A send holds a thread for as long as Twilio takes to answer. The event loop's default pool
# (CPU count + 4 threads) is shared with the MQTT reader, so with every normal worker waiting on
# Twilio a smoke alarm's second SMS would wait there for a thread. Threads start only when
# needed; the dispatcher's workers bound how many sends run at once.
_SEND_THREADS = 32


GATHER_TIMEOUT_S = 8
"""Seconds a call waits for the key after speaking (elders may need a moment)."""
VOICE_WEBHOOK = "/api/webhooks/twilio/voice"
STATUS_WEBHOOK = "/api/webhooks/twilio/status"


def say_language(text: str) -> str:
    # cmn-CN is the id Twilio's TTS voice table uses for Mandarin (Polly.Zhiyu, Google.cmn-CN-*);
    # zh-CN belonged to the retired "alice" voice.
    return "cmn-CN" if _HAN.search(text) else "en-US"


def say(text: str) -> str:
    """One <Say> verb, in Mandarin when the text is Chinese."""
    return f'<Say language="{say_language(text)}">{escape(_XML_FORBIDDEN.sub(" ", text))}</Say>'


def voice_twiml(body: str, prompt: str | None = None, action: str | None = None) -> str:
    """TwiML that reads `body` aloud; with `prompt` and `action`, it then asks for one key and
    posts it to `action` (twice, for an elder who needs a moment; then the call ends)."""
    if prompt is None or action is None:
        return f"<Response>{say(body)}</Response>"
    gather = (
        f'<Gather input="dtmf" numDigits="1" timeout="{GATHER_TIMEOUT_S}" '
        f'action="{escape(action, {chr(34): "&quot;"})}" method="POST">'
    )
    return (
        f"<Response>{gather}{say(body)}{say(prompt)}</Gather>"
        f"{gather}{say(prompt)}</Gather></Response>"
    )


class TwilioNotifier:
    """Sends SMS and voice calls through Twilio's REST API."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings, public_url: str | None = None) -> None:
        if not (settings.account_sid and settings.auth_token and settings.from_number):
            raise ValueError("twilio: account_sid, auth_token and from are all required")
        self._from = settings.from_number
        self._public = public_url.rstrip("/") if public_url else None
        # The sync client in a worker thread: the aiohttp-based async client emits a
        # DeprecationWarning on every request with current aiohttp.
        self._client: Any = Client(
            settings.account_sid,
            settings.auth_token.get_secret_value(),
            http_client=TwilioHttpClient(timeout=settings.timeout_s),
        )
        # TWILIO_EDGE / TWILIO_REGION in the environment would rewrite the host of the configured
        # base URL (127.0.0.1 becomes 127.ie1.0.1); the settings file is the one source.
        self._client.edge = None
        self._client.region = None
        # Messages and Calls both live under the "api" domain, which resolves URLs per request.
        self._client.api.base_url = settings.api_base_url
        self._threads = ThreadPoolExecutor(_SEND_THREADS, thread_name_prefix="twilio-send")

    async def send(self, message: OutboundMessage) -> Delivery:
        """Hand one message to Twilio; raise RetryableSendError or PermanentSendError."""
        try:
            loop = asyncio.get_running_loop()
            resource = await loop.run_in_executor(self._threads, self._create, message)
        except TwilioRestException as exc:
            # `from None`: the original exception quotes the full number and would reach logs.
            raise _classify(exc, message) from None
        except requests.RequestException as exc:
            target = mask_phone(message.to_phone)
            raise RetryableSendError(
                f"twilio {message.channel} to {target}: {type(exc).__name__}"
            ) from exc
        return Delivery(provider=self.name, provider_id=resource.sid, status=str(resource.status))

    def _create(self, message: OutboundMessage) -> Any:
        to, from_ = message.to_phone, self._from
        callback: dict[str, Any] = {}
        if self._public is not None:
            callback["status_callback"] = self._public + STATUS_WEBHOOK
        if message.channel is Channel.SMS:
            return self._client.messages.create(to=to, from_=from_, body=message.body, **callback)
        if message.channel is Channel.VOICE:
            action = None
            if self._public is not None and message.notification_id is not None:
                action = f"{self._public}{VOICE_WEBHOOK}?n={message.notification_id}"
            if callback:
                # Every outcome that ends a call: answered, busy, no answer, failed.
                callback["status_callback_event"] = ["completed"]
                callback["status_callback_method"] = "POST"
            return self._client.calls.create(
                to=to,
                from_=from_,
                twiml=voice_twiml(message.body, message.prompt, action),
                **callback,
            )
        raise PermanentSendError(f"twilio cannot send on channel {message.channel}")


def _classify(exc: TwilioRestException, message: OutboundMessage) -> SendError:
    status = int(exc.status)
    detail = _PHONE_LIKE.sub(lambda m: mask_phone(m.group()), str(exc.msg))
    text = (
        f"twilio {message.channel} to {mask_phone(message.to_phone)}: "
        f"HTTP {status}, error {exc.code}: {detail}"
    )
    # Twilio asks clients to back off and retry on 429; 5xx is its own trouble, not ours.
    if status == 429 or status >= 500:
        return RetryableSendError(text)
    return PermanentSendError(text)
