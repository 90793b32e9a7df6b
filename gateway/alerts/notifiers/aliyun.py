"""Alibaba Cloud SMS (Dysmsapi SendSms) for mainland numbers, through the official SDK.

Mainland SMS carries no free text: the message's `fields` fill the variables of one approved
template (docs/escalation.md gives its text). Aliyun answers a refused message with HTTP 200 and
a `Code` other than "OK"; signature, credential and throttling failures come as HTTP errors,
which the SDK raises.
"""

from __future__ import annotations

import json
import re
from typing import Any

from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import models as openapi_models
from darabonba.exceptions import ResponseException, UnretryableException

from gateway.alerts.notifiers.base import (
    Channel,
    Delivery,
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    SendError,
)
from gateway.config import AliyunSettings
from gateway.privacy import mask_personal_data, mask_phone

__all__ = ["TEMPLATE_VARIABLES", "AliyunSmsNotifier", "mainland_number"]

TEMPLATE_VARIABLES = ("elder", "address", "event", "time", "action", "ack")
"""The variables the approved template may use, all filled from `OutboundMessage.fields`."""

# +86, then an 11-digit mobile number (1[3-9]...): the only numbers a mainland template reaches.
_MAINLAND = re.compile(r"^\+86(1[3-9]\d{9})$")
# Codes in a 200 answer that may pass: Aliyun's per-number and per-account rate limits, and its
# own trouble. Every other code names something about the request, which a retry repeats.
_RETRYABLE_CODES = frozenset(
    {"isv.BUSINESS_LIMIT_CONTROL", "isp.SYSTEM_ERROR", "isp.GATEWAY_ERROR", "SYSTEM_ERROR"}
)
# Error answers are bounded: a signature mismatch quotes the whole string to sign.
_MAX_DETAIL = 200


def mainland_number(e164: str) -> str:
    """+8613800000000 -> 13800000000; raise PermanentSendError for any other number."""
    match = _MAINLAND.match(e164.strip())
    if match is None:
        raise PermanentSendError(
            f"aliyun sms to {mask_phone(e164)}: not a mainland mobile number (+861...)"
        )
    return match[1]


class AliyunSmsNotifier:
    """Sends SMS to mainland numbers with Alibaba Cloud's SendSms and an approved template."""

    name = "aliyun"

    def __init__(self, settings: AliyunSettings) -> None:
        if not settings.enabled or settings.access_key_secret is None:
            raise ValueError(
                "aliyun: access_key_id, access_key_secret, sign_name and template_code are all "
                "required"
            )
        self._sign_name = settings.sign_name
        self._template_code = settings.template_code
        timeout_ms = max(1, round(settings.timeout_s * 1000))
        # No retry_options: the SDK then tries once, and the dispatcher owns retries.
        config = openapi_models.Config(
            access_key_id=settings.access_key_id,
            access_key_secret=settings.access_key_secret.get_secret_value(),
            endpoint=settings.endpoint,
            protocol=settings.protocol,
            connect_timeout=timeout_ms,
            read_timeout=timeout_ms,
        )
        self._client: Any = Client(config)

    async def send(self, message: OutboundMessage) -> Delivery:
        """Hand one SMS to Aliyun; raise RetryableSendError or PermanentSendError."""
        target = mask_phone(message.to_phone)
        if message.channel is not Channel.SMS:
            raise PermanentSendError(f"aliyun sends SMS only, not {message.channel} to {target}")
        number = mainland_number(message.to_phone)
        request = sms_models.SendSmsRequest(
            phone_numbers=number,
            sign_name=self._sign_name,
            template_code=self._template_code,
            template_param=template_param(message),
        )
        try:
            response = await self._client.send_sms_async(request)
        except ResponseException as exc:
            # `from None`: the SDK's text may quote the request, number included.
            raise _classify_error(exc, target, number) from None
        except UnretryableException as exc:
            # The SDK's wrapper for everything that is not an answer: refused connection,
            # timeout, a body that is not JSON.
            reason = type(exc.inner_exception).__name__
            raise RetryableSendError(f"aliyun sms to {target}: {reason}") from None
        body = response.body
        if body.code != "OK":
            detail = _scrub(str(body.message or ""), number)
            text = f"aliyun sms to {target}: {body.code}: {detail} (request {body.request_id})"
            if body.code in _RETRYABLE_CODES:
                raise RetryableSendError(text)
            raise PermanentSendError(text)
        return Delivery(provider=self.name, provider_id=body.biz_id, status="accepted")


def template_param(message: OutboundMessage) -> str:
    """The TemplateParam JSON: the template's variables from the message's fields."""
    values = {key: message.fields[key] for key in TEMPLATE_VARIABLES if key in message.fields}
    if not values:
        raise PermanentSendError(
            f"aliyun sms to {mask_phone(message.to_phone)}: the message has no template fields"
        )
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def _classify_error(exc: ResponseException, target: str, number: str) -> SendError:
    status = int(exc.status_code or 0)
    code = str(getattr(exc, "code", None) or "")
    detail = _scrub(str(getattr(exc, "message", None) or ""), number)
    text = f"aliyun sms to {target}: HTTP {status}, {code}: {detail}"
    # Throttling.User / Throttling.Api come as 400 with a retry-after the SDK reads; 5xx is
    # Aliyun's trouble. A rejected signature or an unknown AccessKeyId will not mend itself.
    if code.startswith("Throttling") or status == 429 or status >= 500:
        return RetryableSendError(text)
    return PermanentSendError(text)


def _scrub(detail: str, number: str) -> str:
    detail = mask_personal_data(detail.replace(number, mask_phone(number)))
    return detail if len(detail) <= _MAX_DETAIL else detail[:_MAX_DETAIL] + "…"
