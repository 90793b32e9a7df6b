from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from gateway.alerts.messages import AlertText, Language, event_name, render_alert
from gateway.models import Severity

SHANGHAI = ZoneInfo("Asia/Shanghai")
TEXT = AlertText(
    rule_id="smoke_alarm",
    severity=Severity.CRITICAL,
    elder_name="张桂兰",
    address="某县某镇某村3组12号",
    device_id="smoke-1",
    at=datetime(2026, 11, 29, 5, 52, tzinfo=UTC),
)


def test_chinese_sms_names_who_where_what_when_and_what_to_do():
    body = render_alert(TEXT, "zh", SHANGHAI)
    assert body.startswith("紧急！")
    for part in (
        "张桂兰",
        "某县某镇某村3组12号",
        "烟雾",
        "11月29日 13:52",
        "smoke-1",
        "请立即联系",
    ):
        assert part in body
    assert len(body) <= 120  # two SMS segments at most


def test_only_critical_alerts_are_marked_urgent():
    body = render_alert(
        AlertText("device_offline", Severity.MEDIUM, "张桂兰", "某村", "plug", TEXT.at),
        "zh",
        SHANGHAI,
    )
    assert not body.startswith("紧急")
    assert "设备离线" in body


def test_english_is_available():
    body = render_alert(TEXT, "en", SHANGHAI)
    assert body.startswith("URGENT: [Care alert] smoke/gas alarm at 张桂兰's home")
    assert "29 Nov 13:52" in body


def test_an_unknown_rule_falls_back_to_its_id():
    body = render_alert(
        AlertText("new_rule", Severity.LOW, "张桂兰", "", "d", TEXT.at), "zh", SHANGHAI
    )
    assert "new_rule" in body


def test_the_chinese_sms_reads_in_order_who_where_what_when_which_device():
    body = render_alert(TEXT, "zh", SHANGHAI)
    assert body == (
        "紧急！【居家关爱】张桂兰家（某县某镇某村3组12号）烟雾/燃气报警，"
        "11月29日 13:52，设备smoke-1。请立即联系老人或上门查看。"
    )


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        (datetime(2026, 11, 29, 5, 52, tzinfo=UTC), "11月29日 13:52"),
        (datetime(2026, 11, 29, 16, 5, tzinfo=UTC), "11月30日 00:05"),
        (datetime(2026, 12, 31, 16, 0, tzinfo=UTC), "1月1日 00:00"),
        (datetime(2026, 3, 1, 1, 2, tzinfo=timezone(timedelta(hours=-5))), "3月1日 14:02"),
    ],
)
def test_the_time_is_local_to_the_household(at: datetime, shown: str):
    assert f"，{shown}，" in render_alert(replace(TEXT, at=at), "zh", SHANGHAI)


def test_the_time_follows_the_zone_given():
    body = render_alert(TEXT, "zh", ZoneInfo("Asia/Urumqi"))
    assert "11月29日 11:52" in body


@pytest.mark.parametrize("severity", [Severity.HIGH, Severity.MEDIUM, Severity.LOW])
def test_only_critical_is_urgent_in_either_language(severity: Severity):
    alert = replace(TEXT, severity=severity)
    assert render_alert(alert, "zh", SHANGHAI).startswith("【居家关爱】")
    assert render_alert(alert, "en", SHANGHAI).startswith("[Care alert]")


def test_the_english_sms_has_every_part():
    body = render_alert(replace(TEXT, rule_id="call_button"), "en", SHANGHAI)
    assert body == (
        "URGENT: [Care alert] call button pressed at 张桂兰's home (某县某镇某村3组12号), "
        "29 Nov 13:52, device smoke-1. Please contact the elder or visit now."
    )


def test_an_unknown_rule_falls_back_to_its_id_in_english_too():
    body = render_alert(replace(TEXT, rule_id="new_rule"), "en", SHANGHAI)
    assert "new_rule at 张桂兰's home" in body


def test_a_missing_address_is_shown_as_a_dash():
    assert "张桂兰家（-）" in render_alert(replace(TEXT, address=""), "zh", SHANGHAI)


@pytest.mark.parametrize(
    "rule_id",
    [
        "smoke_alarm",
        "call_button",
        "fall_detected",
        "water_leak",
        "no_water_use",
        "no_power_use",
        "missed_routine",
        "abnormal_vitals",
        "appliance_left_on",
        "device_offline",
        "low_battery",
    ],
)
def test_every_catalogue_rule_has_a_name_in_both_languages(rule_id: str):
    assert event_name(rule_id, "zh") != rule_id
    assert event_name(rule_id, "en") != rule_id
    assert rule_id not in render_alert(replace(TEXT, rule_id=rule_id), "zh", SHANGHAI)


def test_a_household_alert_names_no_device():
    alert = replace(TEXT, rule_id="no_water_use", severity=Severity.HIGH, device_id="household")
    assert render_alert(alert, "zh", SHANGHAI) == (
        "【居家关爱】张桂兰家（某县某镇某村3组12号）长时间未用水，"
        "11月29日 13:52。请立即联系老人或上门查看。"
    )
    assert "device" not in render_alert(alert, "en", SHANGHAI)


@pytest.mark.parametrize(
    ("rule", "action"),
    [
        ("low_battery", "请安排更换电池。"),
        ("device_offline", "请联系老人确认设备供电和网络，或安排检修。"),
        ("appliance_left_on", "请尽快联系老人确认电器是否在用。"),
    ],
)
def test_device_troubles_ask_for_what_they_need_not_an_emergency_visit(rule: str, action: str):
    body = render_alert(replace(TEXT, rule_id=rule, severity=Severity.LOW), "zh", SHANGHAI)
    assert body.endswith(action)
    assert "请立即" not in body


@pytest.mark.parametrize(
    ("language", "event", "cause"),
    [
        ("zh", "多台设备同时离线", "停电、断网或家中网关故障"),
        ("en", "several devices offline", "home hub"),
    ],
)
def test_devices_silent_together_are_one_message_about_the_likely_common_cause(
    language: Language, event: str, cause: str
):
    several = replace(TEXT, rule_id="device_offline", severity=Severity.MEDIUM, device_id="*")
    body = render_alert(several, language, SHANGHAI)
    assert event in body
    assert cause in body
    assert "*" not in body  # no device to name
