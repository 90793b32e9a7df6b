from __future__ import annotations

from gateway.privacy import mask_citizen_id, mask_phone


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
