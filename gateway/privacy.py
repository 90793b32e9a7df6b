"""Masking of personal data (phone numbers, citizen ID numbers) for lists and logs."""

from __future__ import annotations

import logging
import re
from typing import TypeVar, cast

# Mainland mobile numbers, with or without +86/0086/86 and with spaces or dashes between the
# 3-4-4 groups; digits on either side mean a longer number, which is left alone.
_PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)?86[ -]?)?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)")
# 18-character citizen ID numbers: 17 digits and a check digit or X.
_CITIZEN_ID = re.compile(r"(?<!\d)\d{17}[\dXx](?![\dA-Za-z])")
_SEPARATORS = re.compile(r"[ -]")
_FORMATTER = logging.Formatter()
T = TypeVar("T")


def mask_phone(phone: str) -> str:
    """Mask a phone number: +8613912345678 -> +86139****5678."""
    number = phone.strip()
    if len(number) <= 7:
        return "*" * len(number)
    return f"{number[:-8]}****{number[-4:]}"


def mask_citizen_id(citizen_id: str) -> str:
    """Mask an 18-character citizen ID: keep the region code and the check character."""
    value = citizen_id.strip()
    if len(value) <= 7:
        return "*" * len(value)
    return f"{value[:6]}{'*' * (len(value) - 7)}{value[-1]}"


def mask_personal_data(text: str) -> str:
    """Mask every mainland mobile number and citizen ID number found in free text."""
    text = _CITIZEN_ID.sub(lambda m: mask_citizen_id(m.group()), text)
    return _PHONE.sub(lambda m: mask_phone(_SEPARATORS.sub("", m.group())), text)


def mask_personal_data_in(value: T) -> T:
    """`mask_personal_data` on every string of a JSON-like value (lists and dicts walked)."""
    if isinstance(value, str):
        return cast(T, mask_personal_data(value))
    if isinstance(value, list):
        return cast(T, [mask_personal_data_in(v) for v in value])
    if isinstance(value, dict):
        return cast(T, {k: mask_personal_data_in(v) for k, v in value.items()})
    return value


class PersonalDataFilter(logging.Filter):
    """Masks phone and citizen ID numbers in a record's message, arguments and traceback.

    Installed on handlers, so it covers every logger that propagates to them, libraries' too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # arguments that do not fit the format
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = mask_personal_data(message), None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once it is set, so the traceback is rendered only here.
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_personal_data(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_personal_data(record.stack_info)
        return True
