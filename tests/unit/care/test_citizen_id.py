"""Citizen ID numbers, future dates and the audit's list of changed fields."""

from __future__ import annotations

import re
from datetime import date

import pytest
from stdnum.cn import ric

from gateway.care.households import HouseholdFields
from gateway.care.profile import valid_citizen_id
from gateway.care.registry import changed_fields, future_dates


@pytest.mark.parametrize(
    ("number", "msg"),
    [
        ("110105194912310021", "the check digit (the 18th character) is wrong"),
        ("11010519491231002", "a citizen ID number has 18 characters"),
        ("1101051949123A002X", "a citizen ID number is 17 digits and a digit or X"),
        ("990105194912310025", "the region code or the birth date is not valid"),
    ],
)
def test_a_bad_citizen_id_says_what_is_wrong_without_repeating_it(number: str, msg: str):
    first17 = number[:17]
    if msg == "the region code or the birth date is not valid":
        number = first17 + ric.calc_check_digit(first17 + "0")
    with pytest.raises(ValueError, match="^" + re.escape(msg)) as e:
        valid_citizen_id(number)
    assert number not in str(e.value)


def test_a_lower_case_x_is_accepted_and_stored_upper_case():
    assert valid_citizen_id(" 11010519491231002x ") == "11010519491231002X"


def test_future_dates_are_found_wherever_they_are():
    unborn = "1101052027010100" + "1"
    unborn += ric.calc_check_digit(unborn + "0")
    body = HouseholdFields.model_validate(
        {
            "elder": {"name": "甲", "citizen_id": "11010519491231002X"},
            "members": [{"name": "乙"}, {"name": "丙", "citizen_id": unborn}],
            "registered_on": "2026-12-01",
            "left_on": "2026-12-02",
        }
    )
    assert [e["loc"] for e in future_dates(body, date(2026, 12, 1))] == [
        ["left_on"],
        ["members", 1, "citizen_id"],
    ]


def test_changed_fields_name_what_changed_one_level_deep():
    before = {"elder": {"name": "甲", "phone": "+8613800001111"}, "members": [], "risk": "normal"}
    after = {"elder": {"name": "甲", "phone": "+8613800002222"}, "members": [{}], "risk": "normal"}
    assert changed_fields(before, after) == ["elder.phone", "members"]
