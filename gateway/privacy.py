"""Masking of personal data (phone numbers, citizen ID numbers) for lists and logs."""

from __future__ import annotations


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
