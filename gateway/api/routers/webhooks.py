"""Twilio's webhooks: SMS replies, keys pressed on calls, delivery reports.

Twilio signs each request (`X-Twilio-Signature`: HMAC-SHA1 of the URL it called and the sorted
form parameters, keyed with the account's auth token). The URL is the one Twilio was given, so
it is rebuilt from the public URL (`public_url`, `GATEWAY_PUBLIC_URL`) and the request's path and
query, whatever proxy sits between. A missing or wrong signature gets 403 and changes nothing.
"""

from __future__ import annotations

from typing import Annotated
from xml.sax.saxutils import escape

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from twilio.request_validator import RequestValidator

from gateway.alerts.notifiers.twilio import say
from gateway.alerts.responses import Responses
from gateway.api.deps import MAX_ROW_ID, Context

router = APIRouter(prefix="/api/webhooks/twilio", tags=["webhooks"], include_in_schema=True)

TWIML = "text/xml; charset=utf-8"
MAX_FIELD = 1600
"""Longest value read from a form (an SMS body is at most 1,600 characters)."""


async def _verified(
    request: Request, context: Context, kind: str
) -> tuple[Responses, dict[str, str]]:
    responses = context.responses
    if responses is None or context.twilio_auth_token is None or context.public_url is None:
        context.metrics.webhooks.labels(kind, "off").inc()
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            "Twilio webhooks are off: set public_url and the [twilio] account",
        )
    form = await request.form(max_files=0, max_fields=100)
    params = {key: value[:MAX_FIELD] for key, value in form.items() if isinstance(value, str)}
    url = context.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    signature = request.headers.get("x-twilio-signature", "")
    if not signature or not RequestValidator(context.twilio_auth_token).validate(
        url, params, signature
    ):
        context.metrics.webhooks.labels(kind, "forged").inc()
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or invalid Twilio signature")
    return responses, params


@router.post("/sms")
async def sms(request: Request, context: Context) -> Response:
    """An SMS to the gateway's number: 1 / OK / 收到 acknowledges, 2 / 到达 confirms arrival."""
    responses, params = await _verified(request, context, "sms")
    reply = await responses.sms_reply(params.get("From", ""), params.get("Body", ""))
    body = (
        "<Response/>"
        if reply is None
        else f"<Response><Message>{escape(reply)}</Message></Response>"
    )
    return Response(body, media_type=TWIML)


@router.post("/voice")
async def voice(
    request: Request,
    context: Context,
    n: Annotated[int, Query(ge=1, le=MAX_ROW_ID, description="the notification the call is for")],
) -> Response:
    """The key pressed on a call (the Gather's action)."""
    responses, params = await _verified(request, context, "voice")
    spoken = await responses.keypress(n, params.get("Digits", "").strip())
    text = say(spoken.text) if spoken.text else ""
    return Response(f"<Response>{text}<Hangup/></Response>", media_type=TWIML)


@router.post("/status", status_code=status.HTTP_204_NO_CONTENT)
async def delivery_status(request: Request, context: Context) -> Response:
    """A message's or call's delivery report (StatusCallback)."""
    responses, params = await _verified(request, context, "status")
    sid = params.get("MessageSid") or params.get("CallSid") or ""
    reported = params.get("MessageStatus") or params.get("CallStatus") or ""
    if sid and reported:
        known = await responses.delivery_report(sid, reported, params.get("ErrorCode") or None)
        context.metrics.webhooks.labels("status", "ok" if known else "unknown_sid").inc()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
