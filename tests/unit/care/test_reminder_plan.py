"""What reminders are due when, about whom, and what they say."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.care.reminder_plan import (
    FIELD_LENGTH,
    MAX_LISTED,
    Due,
    ReminderKind,
    ReminderRules,
    Sent,
    Ward,
    due_now,
    not_yet_reminded,
    reminder_fields,
    reminder_text,
    wards_due,
)
from gateway.reports.coverage import Contact

SHANGHAI = ZoneInfo("Asia/Shanghai")
RULES = ReminderRules()


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def ward(hid: str, *, risk: str = "normal", changed_at: datetime | None = None) -> Ward:
    return Ward(hid, f"老人{hid}", "东村", risk, changed_at)


@pytest.mark.parametrize(
    ("when", "kinds"),
    [
        (local(20, 8, 59), []),
        (local(20, 9), ["monthly:2026-11-20", "high_risk:2026-11-20", "changed:2026-11-20T09"]),
        (local(21, 15), ["high_risk:2026-11-21", "changed:2026-11-21T15"]),
        (
            local(25, 20, 59),
            ["monthly:2026-11-25", "high_risk:2026-11-25", "changed:2026-11-25T20"],
        ),
        (local(25, 21), []),  # quiet at night
    ],
)
def test_what_is_due_at_each_hour(when: datetime, kinds: list[str]):
    assert [f"{d.kind}:{d.period}" for d in due_now(when, SHANGHAI, RULES)] == kinds


def test_tiers_switched_off_are_never_due():
    rules = ReminderRules(monthly_days=(), high_risk_every_days=None, changed_within_hours=None)
    assert due_now(local(20, 9), SHANGHAI, rules) == []
    only = ReminderRules(monthly_days=(1,), send_at=time(8), high_risk_every_days=None)
    assert due_now(local(1, 8), SHANGHAI, only) == [
        Due(ReminderKind.MONTHLY, "2026-11-01"),
        Due(ReminderKind.CHANGED, "2026-11-01T08"),
    ]


def test_monthly_names_those_without_a_counting_visit_this_month():
    wards = [ward("A"), ward("B"), ward("C")]
    contacts = [
        Contact("A", local(1, 0, 10), automatic=False),
        Contact("B", local(3, 9), automatic=True),
        Contact("C", local(1, 0) - timedelta(minutes=1), automatic=False),  # October's
    ]
    due = wards_due(ReminderKind.MONTHLY, wards, contacts, local(20, 9), SHANGHAI, RULES)
    assert [w.household_id for w in due] == ["B", "C"]


def test_high_risk_needs_a_visit_in_the_last_seven_days():
    wards = [ward("A", risk="high"), ward("B", risk="high"), ward("C")]
    contacts = [
        Contact("A", local(13, 10), automatic=False),  # 7 days less an hour ago
        Contact("B", local(13, 8), automatic=False),
    ]
    due = wards_due(ReminderKind.HIGH_RISK, wards, contacts, local(20, 9), SHANGHAI, RULES)
    assert [w.household_id for w in due] == ["B"]


def test_a_change_needs_a_visit_after_it_and_is_news_for_24_hours():
    now = local(20, 10)
    wards = [
        ward("A", changed_at=local(20, 9)),
        ward("B", changed_at=local(20, 8)),
        ward("C", changed_at=local(19, 9, 59)),  # more than 24 h ago
        ward("D"),
    ]
    contacts = [
        Contact("A", local(20, 8, 30), automatic=False),  # before its change
        Contact("B", local(20, 8, 30), automatic=False),
    ]
    due = wards_due(ReminderKind.CHANGED, wards, contacts, now, SHANGHAI, RULES)
    assert [w.household_id for w in due] == ["A"]


def test_elders_already_reminded_of_are_left_out():
    a, b = ward("A", risk="high", changed_at=local(20, 9)), ward("B", risk="high")
    sent = [
        Sent("13900000001", ReminderKind.HIGH_RISK, frozenset({"A"}), local(14, 9)),
        Sent("13900000001", ReminderKind.CHANGED, frozenset({"A"}), local(20, 9, 30)),
        Sent("13900000002", ReminderKind.HIGH_RISK, frozenset({"B"}), local(20, 9)),
    ]
    phone = "13900000001"
    high = not_yet_reminded(ReminderKind.HIGH_RISK, phone, [a, b], sent, local(20, 10), RULES)
    assert high == [b]
    week = not_yet_reminded(ReminderKind.HIGH_RISK, phone, [a, b], sent, local(21, 10), RULES)
    assert week == [a, b]
    changed = not_yet_reminded(ReminderKind.CHANGED, phone, [a], sent, local(20, 10), RULES)
    assert changed == []


def test_a_long_list_names_thirty_and_counts_all():
    wards = [ward(f"H{i:02d}") for i in range(MAX_LISTED + 5)]
    zh = reminder_text(ReminderKind.MONTHLY, wards, "zh", RULES)
    assert zh.count("（东村）") == MAX_LISTED
    assert zh.endswith(f"等（共{MAX_LISTED + 5}位）。请在月底前完成探访。")
    en = reminder_text(ReminderKind.HIGH_RISK, wards[:2], "en", RULES)
    assert en == (
        "High-risk elders not visited in the last 7 days: 老人H00 (东村), 老人H01 (东村) "
        "(2 in all). Please visit them soon."
    )


def test_template_fields_for_providers_without_free_text_stay_within_their_limit():
    wards = [Ward(f"H{i}", f"老人{i:02d}号", f"第{i % 3}村", "normal", None) for i in range(12)]
    fields = reminder_fields(ReminderKind.MONTHLY, wards, "zh", RULES, date(2026, 11, 20))
    assert fields["elder"].startswith("老人00号、老人01号")
    assert fields["elder"].endswith("等12位老人")
    assert fields["address"] == "第0村、第1村、第2村"
    assert (fields["event"], fields["time"], fields["action"]) == (
        "本月尚未探访",
        "11月20日",
        "请在月底前完成探访",
    )
    assert all(len(v) <= FIELD_LENGTH for v in fields.values())
    one = reminder_fields(ReminderKind.CHANGED, wards[:1], "zh", RULES, date(2026, 11, 20))
    assert (one["elder"], one["action"]) == ("老人00号", "请在24小时内探访")
