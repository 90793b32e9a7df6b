"""Which visit reminders are due, to whom, about which elders, and what they say. Pure.

Three kinds: monthly (on the configured days, the elders not yet visited this month), high
risk (an elder of high risk not visited in the last N days) and changed (an elder whose
situation changed and who has not been visited since). A reminder is one SMS per visitor and
kind and period; only visits that were a contact count (see gateway/reports/coverage.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from gateway.reports.coverage import Contact, month_of, visited_households

MAX_LISTED = 30
"""Elders named in one SMS; beyond that it says "and others" (the count stays whole)."""


class ReminderKind(StrEnum):
    MONTHLY = "monthly"
    HIGH_RISK = "high_risk"
    CHANGED = "changed"


@dataclass(frozen=True, slots=True)
class ReminderRules:
    """The [care] settings the plan needs."""

    monthly_days: tuple[int, ...] = (20, 25)
    send_at: time = time(9, 0)
    quiet_from: time = time(21, 0)
    high_risk_every_days: int | None = 7
    changed_within_hours: int | None = 24


@dataclass(frozen=True, slots=True)
class Ward:
    """An elder in the programme today, as a reminder sees them."""

    household_id: str
    name: str
    village: str
    risk: str
    changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Sent:
    """A reminder already sent: to whom (normalised phone), which kind, about whom, when."""

    phone: str
    kind: ReminderKind
    households: frozenset[str]
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Due:
    kind: ReminderKind
    period: str
    """The claim's key with the phone and kind: a day, or an hour for changes."""


def due_now(now: datetime, zone: ZoneInfo, rules: ReminderRules) -> list[Due]:
    """The kinds of reminder due at `now`: none outside the sending hours."""
    local = now.astimezone(zone)
    if not rules.send_at <= local.time() < rules.quiet_from:
        return []
    day = local.date().isoformat()
    due = []
    if local.day in rules.monthly_days:
        due.append(Due(ReminderKind.MONTHLY, day))
    if rules.high_risk_every_days is not None:
        due.append(Due(ReminderKind.HIGH_RISK, day))
    if rules.changed_within_hours is not None:
        due.append(Due(ReminderKind.CHANGED, f"{day}T{local.hour:02d}"))
    return due


def wards_due(
    kind: ReminderKind,
    wards: Iterable[Ward],
    contacts: Sequence[Contact],
    now: datetime,
    zone: ZoneInfo,
    rules: ReminderRules,
) -> list[Ward]:
    """The elders a reminder of `kind` is about at `now` (before leaving out those already
    reminded of): not visited this month / in the last N days / since their change."""
    later = now + timedelta(days=366)  # visits entered with a time ahead of the clock count
    if kind is ReminderKind.MONTHLY:
        start, end = month_of(now, zone).bounds(zone)
        visited = visited_households(contacts, start, end)
        return [w for w in wards if w.household_id not in visited]
    if kind is ReminderKind.HIGH_RISK:
        assert rules.high_risk_every_days is not None
        since = now - timedelta(days=rules.high_risk_every_days)
        visited = visited_households(contacts, since, later)
        return [w for w in wards if w.risk == "high" and w.household_id not in visited]
    assert rules.changed_within_hours is not None
    window = timedelta(hours=rules.changed_within_hours)
    changed = {
        w.household_id: w.changed_at
        for w in wards
        if w.changed_at is not None and now - window <= w.changed_at <= now
    }
    earliest = min(changed.values(), default=now)
    visited = visited_households(contacts, earliest, later, since=changed)
    return [w for w in wards if w.household_id in changed and w.household_id not in visited]


def not_yet_reminded(
    kind: ReminderKind,
    phone: str,
    wards: Iterable[Ward],
    sent: Iterable[Sent],
    now: datetime,
    rules: ReminderRules,
) -> list[Ward]:
    """Leave out elders this visitor was already reminded of: a high-risk elder in the last N
    days, a changed elder since the change (monthly reminders are once per period anyway)."""
    mine = [s for s in sent if s.phone == phone and s.kind is kind]
    if kind is ReminderKind.MONTHLY or not mine:
        return list(wards)
    if kind is ReminderKind.HIGH_RISK:
        assert rules.high_risk_every_days is not None
        since = now - timedelta(days=rules.high_risk_every_days)
        recent = {h for s in mine if s.sent_at > since for h in s.households}
        return [w for w in wards if w.household_id not in recent]

    def reminded_since_change(ward: Ward) -> bool:
        changed = ward.changed_at
        return changed is not None and any(
            ward.household_id in s.households and s.sent_at >= changed for s in mine
        )

    return [w for w in wards if not reminded_since_change(w)]


_TEXTS: Mapping[str, Mapping[ReminderKind, str]] = {
    "zh": {
        ReminderKind.MONTHLY: "本月尚未探访的老人：{names}（共{count}位）。请在月底前完成探访。",
        ReminderKind.HIGH_RISK: "高风险老人已{days}天未探访：{names}（共{count}位）。请尽快探访。",
        ReminderKind.CHANGED: "以下老人情况有重大变化，请在{hours}小时内探访："
        "{names}（共{count}位）。",
    },
    "en": {
        ReminderKind.MONTHLY: "Elders you have not visited yet this month: {names} ({count} in "
        "all). Please visit them before the end of the month.",
        ReminderKind.HIGH_RISK: "High-risk elders not visited in the last {days} days: {names} "
        "({count} in all). Please visit them soon.",
        ReminderKind.CHANGED: "The situation of these elders has changed; please visit within "
        "{hours} hours: {names} ({count} in all).",
    },
}


def _named(ward: Ward, language: str) -> str:
    if not ward.village:
        return ward.name
    return f"{ward.name}（{ward.village}）" if language == "zh" else f"{ward.name} ({ward.village})"


def reminder_text(
    kind: ReminderKind, wards: Sequence[Ward], language: str, rules: ReminderRules
) -> str:
    """The SMS: the elders' names and villages, never a phone number."""
    texts = _TEXTS.get(language, _TEXTS["zh"])
    lang = language if language in _TEXTS else "zh"
    named = [_named(w, lang) for w in wards[:MAX_LISTED]]
    names = ("、" if lang == "zh" else ", ").join(named)
    if len(wards) > MAX_LISTED:
        names += "等" if lang == "zh" else " and others"
    return texts[kind].format(
        names=names,
        count=len(wards),
        days=rules.high_risk_every_days,
        hours=rules.changed_within_hours,
    )


FIELD_LENGTH = 35
"""Alibaba Cloud's limit on one template variable (characters)."""

_FIELD_TEXTS: Mapping[str, Mapping[ReminderKind, tuple[str, str]]] = {
    "zh": {
        ReminderKind.MONTHLY: ("本月尚未探访", "请在月底前完成探访"),
        ReminderKind.HIGH_RISK: ("已{days}天未探访", "请尽快探访"),
        ReminderKind.CHANGED: ("情况有重大变化", "请在{hours}小时内探访"),
    },
    "en": {
        ReminderKind.MONTHLY: ("not visited yet this month", "please visit before month end"),
        ReminderKind.HIGH_RISK: ("not visited for {days} days", "please visit soon"),
        ReminderKind.CHANGED: ("situation changed", "please visit within {hours} hours"),
    },
}


def _within(parts: Sequence[str], separator: str, suffix: str) -> str:
    text = ""
    for part in parts:
        candidate = f"{text}{separator}{part}" if text else part
        if len(candidate) + len(suffix) > FIELD_LENGTH:
            break
        text = candidate
    return (text + suffix)[:FIELD_LENGTH]


def reminder_fields(
    kind: ReminderKind, wards: Sequence[Ward], language: str, rules: ReminderRules, day: date
) -> dict[str, str]:
    """The variables of the approved alert template (providers that send no free text, like
    Alibaba Cloud): elder, address, event, time, action, ack, each within its length limit."""
    lang = language if language in _FIELD_TEXTS else "zh"
    event, action = _FIELD_TEXTS[lang][kind]
    names = [w.name for w in wards]
    villages = list(dict.fromkeys(w.village for w in wards if w.village))
    zh = lang == "zh"
    suffix = ""
    if len(names) > 1:
        suffix = f"等{len(names)}位老人" if zh else f" ({len(names)} elders)"
    return {
        "elder": _within(names, "、" if zh else ", ", suffix),
        "address": _within(villages, "、" if zh else ", ", ""),
        "event": event.format(days=rules.high_risk_every_days),
        "time": f"{day.month}月{day.day}日" if zh else day.isoformat(),
        "action": action.format(hours=rules.changed_within_hours),
        "ack": "无需回复" if zh else "no reply needed",
    }
