"""The visit form as people read it: column labels and finding labels, Chinese and English.

The exports and the printed page share these tables, so a column is named once. Free text is
masked (phone and ID numbers a visitor typed into a note), as in every list.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal
from zoneinfo import ZoneInfo

from gateway.care.visit_form import (
    FamilyContact,
    Health,
    IllnessChange,
    LivingSecurity,
    Safety,
    Satisfaction,
    Trend,
    VisitForm,
)
from gateway.privacy import mask_personal_data
from gateway.store.visits import VisitMethod, VisitRecord

Language = Literal["zh", "en"]

# (zh, en) per column of the visit record table, in the paper form's order.
VISIT_COLUMNS: dict[str, tuple[str, str]] = {
    "seq": ("序号", "No."),
    "visited_at": ("探访时间", "Date and time"),
    "method": ("探访方式", "Method"),
    "household_size_change": ("家庭人口变化", "Household size"),
    "expression": ("神情", "Expression"),
    "mobility": ("行动", "Mobility"),
    "mood": ("情绪", "Mood"),
    "personal_hygiene": ("个人卫生", "Personal hygiene"),
    "home_hygiene": ("居家卫生", "Home hygiene"),
    "indoor_environment": ("室内环境", "Indoor environment"),
    "illness": ("疾病情况", "Illness"),
    "gas": ("燃气安全", "Gas"),
    "water_heating": ("热水器安全", "Water heating"),
    "electricity": ("用电安全", "Electricity"),
    "fire": ("消防安全", "Fire safety"),
    "health": ("健康状况", "Health"),
    "living_security": ("生活保障", "Living security"),
    "living_environment": ("居住环境", "Living environment"),
    "hygiene": ("卫生情况", "Hygiene"),
    "children_visit": ("子女探望", "Children visit"),
    "children_call": ("子女来电", "Children call"),
    "family_care": ("家庭照料", "Family care"),
    "service_needs": ("服务需求", "Service needs"),
    "care_suggestions": ("关爱建议", "Care suggestions"),
    "special_circumstances": ("特殊情况", "Special circumstances"),
    "summary": ("探访情况", "Summary"),
    "visitor": ("探访人", "Visitor"),
    "elder": ("老人签字确认", "Elder's confirmation"),
    "entered_by": ("录入人", "Entered by"),
}

SERVICE_COLUMNS: dict[str, tuple[str, str]] = {
    "seq": ("序号", "No."),
    "served_on": ("服务日期", "Date"),
    "service": ("服务内容", "Service given"),
    "provider": ("服务提供者", "Provider"),
    "satisfaction": ("满意度", "Satisfaction"),
}

# The elder's basic information block, above the tables.
ELDER_FIELDS: dict[str, tuple[str, str]] = {
    "household_id": ("户号", "Household"),
    "elder_name": ("老人姓名", "Elder"),
    "citizen_id": ("身份证号", "Citizen ID"),
    "elder_phone": ("联系电话", "Phone"),
    "county": ("县（市、区）", "County"),
    "township": ("乡镇（街道）", "Township"),
    "village": ("村（社区）", "Village"),
    "address_detail": ("详细地址", "Address"),
    "emergency_contact": ("紧急联系人", "Emergency contact"),
    "emergency_phone": ("紧急联系人电话", "Emergency contact's phone"),
    "visitors": ("结对探访人", "Assigned visitors"),
}

TITLES: dict[str, tuple[str, str]] = {
    "form": ("特殊困难老年人探访关爱记录表", "Visit record of an elder in special difficulty"),
    "elder": ("老人基本信息", "The elder"),
    "visits": ("探访记录", "Visit records"),
    "services": ("关爱服务记录", "Care services"),
}

_VALUES: dict[type[StrEnum], dict[str, tuple[str, str]]] = {
    VisitMethod: {
        "home_visit": ("上门探访", "home visit"),
        "phone": ("电话", "phone"),
        "video": ("视频", "video"),
        "remote_monitoring": ("远程监测", "remote monitoring"),
        "other": ("其他", "other"),
    },
    Trend: {
        "no_change": ("无变化", "no change"),
        "better": ("好转", "better"),
        "worse": ("变差", "worse"),
    },
    IllnessChange: {
        "no_change": ("无变化", "no change"),
        "serious": ("严重", "serious"),
        "improved": ("好转", "improved"),
    },
    Safety: {
        "safe": ("安全", "safe"),
        "fairly_safe": ("较安全", "fairly safe"),
        "unsafe": ("不安全", "unsafe"),
    },
    Health: {"good": ("良好", "good"), "fair": ("一般", "fair"), "poor": ("较差", "poor")},
    LivingSecurity: {
        "secure": ("有保障", "provided for"),
        "basic": ("基本有保障", "basically provided for"),
        "insecure": ("无保障", "not provided for"),
    },
    FamilyContact: {
        "regularly": ("经常", "regularly"),
        "occasionally": ("偶尔", "occasionally"),
        "never": ("从不", "never"),
        "no_children": ("无子女", "no children"),
    },
    Satisfaction: {
        "very_satisfied": ("非常满意", "very satisfied"),
        "satisfied": ("满意", "satisfied"),
        "fair": ("一般", "fair"),
        "dissatisfied": ("不满意", "dissatisfied"),
    },
}


def label(value: StrEnum | None, language: Language) -> str:
    """A finding's label for people; "" when it was not recorded."""
    if value is None:
        return ""
    zh, en = _VALUES[type(value)][value.value]
    return zh if language == "zh" else en


def heading(table: dict[str, tuple[str, str]], key: str, language: Language) -> str:
    zh, en = table[key]
    return zh if language == "zh" else en


def headings(table: dict[str, tuple[str, str]], language: Language) -> list[str]:
    return [heading(table, key, language) for key in table]


def _with_note(finding: str, note: str | None, language: Language) -> str:
    note = mask_personal_data(note or "")
    if finding and note:
        return f"{finding}（{note}）" if language == "zh" else f"{finding} ({note})"
    return finding or note


def _size_change(change: int | None, language: Language) -> str:
    if change is None:
        return ""
    if change == 0:
        return "无变化" if language == "zh" else "no change"
    if language == "zh":
        return f"增加{change}人" if change > 0 else f"减少{-change}人"
    return f"+{change}" if change > 0 else f"−{-change}"


def _elder(form: VisitForm, language: Language) -> str:
    signature = mask_personal_data(form.elder_signature or "")
    if form.elder_confirmed is None:
        return signature
    zh, en = ("已确认", "confirmed") if form.elder_confirmed else ("未确认", "not confirmed")
    return _with_note(signature, zh if language == "zh" else en, language)


def stored_form(details: dict[str, Any]) -> VisitForm:
    """The findings filed with a visit (none for records older than the form)."""
    found = details.get("form")
    return VisitForm.model_validate(found) if isinstance(found, dict) else VisitForm()


def visit_cells(visit: VisitRecord, zone: ZoneInfo, language: Language) -> dict[str, str]:
    """One visit as the cells of a VISIT_COLUMNS row."""
    form = stored_form(visit.details)
    when: datetime = visit.visited_at.astimezone(zone)
    illness = label(form.illness, language)
    if form.illness_name:
        illness += ("：" if language == "zh" else ": ") + mask_personal_data(form.illness_name)
    text = {
        key: mask_personal_data(getattr(form, key) or "")
        for key in ("service_needs", "care_suggestions", "special_circumstances")
    }
    return {
        "seq": "" if visit.seq is None else str(visit.seq),
        "visited_at": when.strftime("%Y-%m-%d %H:%M"),
        "method": label(visit.method, language),
        "household_size_change": _size_change(form.household_size_change, language),
        "expression": label(form.expression, language),
        "mobility": label(form.mobility, language),
        "mood": label(form.mood, language),
        "personal_hygiene": label(form.personal_hygiene, language),
        "home_hygiene": label(form.home_hygiene, language),
        "indoor_environment": label(form.indoor_environment, language),
        "illness": illness,
        "gas": label(form.gas, language),
        "water_heating": label(form.water_heating, language),
        "electricity": label(form.electricity, language),
        "fire": label(form.fire, language),
        "health": _with_note(label(form.health, language), form.health_note, language),
        "living_security": _with_note(
            label(form.living_security, language), form.living_security_note, language
        ),
        "living_environment": mask_personal_data(form.living_environment_note or ""),
        "hygiene": mask_personal_data(form.hygiene_note or ""),
        "children_visit": label(form.children_visit, language),
        "children_call": label(form.children_call, language),
        "family_care": mask_personal_data(form.family_care_note or ""),
        **text,
        "summary": mask_personal_data(visit.summary),
        "visitor": visit.visitor,
        "elder": _elder(form, language),
        "entered_by": visit.created_by,
    }
