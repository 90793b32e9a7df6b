"""Phone numbers: validated and stored in E.164, matched whatever way a person writes them."""

from __future__ import annotations

import re
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator

DEFAULT_REGION = "CN"
"""Numbers written without a country code are mainland China's."""
_PHONE_CHARACTERS = re.compile(r"\+?[(0-9][0-9 ()\-]*")


def normalise_phone(phone: str) -> str:
    """Digits only, without China's country code, so +86 138..., 138... and 0086138... match."""
    digits = re.sub(r"\D", "", phone)
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            return digits[len(prefix) :]
    return digits


def phone_forms(phone: str) -> list[str]:
    """The ways a stored number may be written for the same mainland mobile phone."""
    digits = normalise_phone(phone)
    if not digits:
        return []
    forms = {phone.strip(), digits, f"+{digits}"}
    if len(digits) == 11 and digits.startswith("1"):
        forms |= {f"+86{digits}", f"86{digits}", f"0086{digits}"}
    return sorted(forms)


def e164(value: str) -> str:
    """A valid phone number in E.164 (+8613912345678); ValueError saying what is wrong
    (never echoing the number: error answers and logs carry no personal data).

    Mainland mobile and fixed-line numbers may be written without +86 (a fixed line with its
    area code: 010-12345678); numbers abroad (a child working overseas) need their country code.
    """
    # phonenumbers finds a number inside text ("call 139..."); a field holds a number only.
    if not _PHONE_CHARACTERS.fullmatch(value.strip()):
        raise ValueError("not a phone number (digits, with + - ( ) or spaces between them)")
    try:
        number = phonenumbers.parse(value, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError(
            "not a valid phone number (a mainland mobile like 13912345678, a fixed line with "
            "its area code like 010-12345678, or + country code and number)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


ValidPhone = Annotated[str, AfterValidator(e164)]
"""A phone number checked and stored in E.164."""
