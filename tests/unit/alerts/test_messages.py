from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from gateway.alerts.messages import AlertText, render_alert
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
