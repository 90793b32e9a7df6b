from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest

from gateway.privacy import (
    PersonalDataFilter,
    mask_citizen_id,
    mask_personal_data,
    mask_personal_data_in,
    mask_phone,
)


def test_phone_numbers_keep_only_prefix_and_last_four():
    assert mask_phone("+8613912345678") == "+86139****5678"
    assert mask_phone("13912345678") == "139****5678"
    assert mask_phone("12345") == "*****"


def test_citizen_ids_keep_region_and_check_character():
    assert mask_citizen_id("11010519491231002X") == "110105***********X"


def test_surrounding_spaces_are_not_counted():
    assert mask_phone(" 13912345678 ") == "139****5678"
    assert mask_citizen_id(" 11010519491231002X\n") == "110105***********X"


def test_the_middle_digits_never_appear():
    assert "1234" not in mask_phone("+8613912345678")
    assert "19491231" not in mask_citizen_id("11010519491231002X")


def test_short_values_are_masked_entirely():
    assert mask_phone("") == ""
    assert mask_phone("1234567") == "*******"
    assert mask_citizen_id("1234567") == "*******"


def test_old_fifteen_digit_citizen_ids_keep_the_same_parts():
    assert mask_citizen_id("110105491231002") == "110105********2"


def test_a_masked_value_keeps_its_length():
    for phone in ("+8613912345678", "13912345678", "010-12345678"):
        assert len(mask_phone(phone)) == len(phone)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("call +8613912345678 now", "call +86139****5678 now"),
        ("call 13912345678.", "call 139****5678."),
        ("tel:008613912345678", "tel:0086139****5678"),
        ("139 1234 5678 / 139-1234-5678", "139****5678 / 139****5678"),
        ('{"phone":"+8613800000000"}', '{"phone":"+86138****0000"}'),
        ("id=11010519491231002X;", "id=110105***********X;"),
        ("id 110105194912310021", "id 110105***********1"),
    ],
)
def test_phones_and_citizen_ids_in_text_are_masked(text: str, masked: str):
    assert mask_personal_data(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "reading 1764400000 at 12:00",  # a timestamp
        "order 1391234567890123456789",  # a longer number
        "2026-11-29T05:52:00+00:00",
        "energy 12345.678 kWh",
    ],
)
def test_other_numbers_are_left_alone(text: str):
    assert mask_personal_data(text) == text


def _masked_output(emit: Callable[[logging.Logger], None]) -> str:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
    handler.addFilter(PersonalDataFilter())
    # A logger outside the hierarchy: pytest's capture handlers are not attached to it.
    logger = logging.Logger("gateway.test")
    logger.addHandler(handler)
    emit(logger)
    return out.getvalue()


def test_log_messages_arguments_and_tracebacks_are_masked():
    def emit(log: logging.Logger) -> None:
        log.warning("SMS to +8613912345678 failed")
        log.warning("household %s, elder %s", "H001", {"phone": "13700000000"})
        log.warning("citizen %(id)s", {"id": "11010519491231002X"})
        try:
            raise ValueError("bad body: {'phone': '+8613800000000', 'id': '110105194912310021'}")
        except ValueError:
            log.exception("request for %s failed", "13912345678")
        log.warning("stack of %s", "13912345678", stack_info=True)

    output = _masked_output(emit)
    for whole in ("13912345678", "13700000000", "13800000000", "19491231"):
        assert whole not in output
    assert "SMS to +86139****5678 failed" in output
    assert "household H001, elder {'phone': '137****0000'}" in output
    assert "citizen 110105***********X" in output
    assert "Traceback (most recent call last)" in output
    assert "ValueError: bad body: {'phone': '+86138****0000', 'id': '110105***********1'}" in output


def test_arguments_that_do_not_fit_the_format_are_masked_too():
    output = _masked_output(lambda log: log.warning("one %s", "13912345678", "13800000000"))
    assert "13912345678" not in output
    assert "13800000000" not in output


def test_every_string_of_a_json_value_is_masked_and_nothing_else_changes():
    value = {"who": ["李敏 13912345678", {"id": "11010519491231002X"}], "n": 3, "ok": None}
    assert mask_personal_data_in(value) == {
        "who": ["李敏 139****5678", {"id": "110105***********X"}],
        "n": 3,
        "ok": None,
    }
