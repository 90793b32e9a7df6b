"""What the fake Twilio REST API answers: Message and Call resources and error bodies."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from email.utils import formatdate
from typing import Any

API_VERSION = "2010-04-01"
# Codes and texts Twilio answers with; the {to} placeholder is the request's To field.
_ERRORS: dict[int, str] = {
    20003: "Authenticate",
    20004: "Method not allowed",
    20404: "The requested resource {path} was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    21201: "No 'To' number is specified",
    21205: "Url parameter is required.",
    21211: "The 'To' number {to} is not a valid phone number.",
    21213: "No 'From' number is specified",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
}
DEFAULT_CODE = {400: 21211, 401: 20003, 404: 20404, 405: 20004, 429: 20429}
"""The error code Twilio gives with each HTTP status, when a test names none."""


def first_missing(form: Mapping[str, str], required: list[tuple[str, int]]) -> int | None:
    """The error code of the first required field the form lacks, if any."""
    return next((code for field, code in required if not form.get(field)), None)


def error_payload(
    status: int, code: int, path: str, form: Mapping[str, str], message: str | None = None
) -> tuple[int, dict[str, Any]]:
    """Twilio's error JSON for `code`, with its HTTP status."""
    text = message or _ERRORS.get(code, "Error").format(path=path, to=form.get("To", ""))
    return status, {
        "code": code,
        "message": text,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def timestamp() -> str:
    """Now, in the RFC 2822 form Twilio uses for dates."""
    return formatdate(usegmt=False).replace("-0000", "+0000")


def segments(body: str) -> int:
    """How many SMS segments `body` takes."""
    # GSM-7 (approximated by ASCII) fits 160 characters per segment, UCS-2 (Chinese) only 70.
    single, part = (160, 153) if body.isascii() else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)


def _common(prefix: str, kind: str, sid: str, form: Mapping[str, str]) -> dict[str, Any]:
    resource_sid = prefix + secrets.token_hex(16)
    now = timestamp()
    return {
        "account_sid": sid,
        "api_version": API_VERSION,
        "date_created": now,
        "date_updated": now,
        "direction": "outbound-api",
        "from": form["From"],
        "price": None,
        "price_unit": "USD",
        "sid": resource_sid,
        "status": "queued",
        "to": form["To"],
        "uri": f"/2010-04-01/Accounts/{sid}/{kind}/{resource_sid}.json",
    }


def message_resource(sid: str, form: Mapping[str, str]) -> dict[str, Any]:
    """A newly queued Message, as the create request answers it."""
    resource = _common("SM", "Messages", sid, form)
    body = form["Body"]
    return resource | {
        "body": body,
        "date_sent": None,
        "error_code": None,
        "error_message": None,
        "messaging_service_sid": None,
        "num_media": "0",
        "num_segments": str(segments(body)),
        "subresource_uris": {"media": resource["uri"].removesuffix(".json") + "/Media.json"},
    }


def call_resource(sid: str, form: Mapping[str, str]) -> dict[str, Any]:
    """A newly queued Call, as the create request answers it."""
    resource = _common("CA", "Calls", sid, form)
    base = resource["uri"].removesuffix(".json")
    return resource | {
        "answered_by": None,
        "caller_name": None,
        "duration": None,
        "end_time": None,
        "from_formatted": form["From"],
        "parent_call_sid": None,
        "start_time": None,
        "to_formatted": form["To"],
        "subresource_uris": {
            "notifications": f"{base}/Notifications.json",
            "recordings": f"{base}/Recordings.json",
        },
    }
