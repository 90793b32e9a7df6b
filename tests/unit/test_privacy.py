from gateway.privacy import mask_citizen_id, mask_phone


def test_phone_numbers_keep_only_prefix_and_last_four():
    assert mask_phone("+8613912345678") == "+86139****5678"
    assert mask_phone("13912345678") == "139****5678"
    assert mask_phone("12345") == "*****"


def test_citizen_ids_keep_region_and_check_character():
    assert mask_citizen_id("11010519491231002X") == "110105***********X"
