"""Short SMS texts, Chinese by default: who, where, what, when, and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from gateway.models import HOUSEHOLD_DEVICE, SEVERAL_DEVICES, Severity

Language = Literal["zh", "en"]

EVENT_NAMES: dict[str, dict[Language, str]] = {
    "smoke_alarm": {"zh": "烟雾/燃气报警", "en": "smoke/gas alarm"},
    "call_button": {"zh": "一键呼叫求助", "en": "call button pressed"},
    "device_offline": {"zh": "设备离线", "en": "device offline"},
    "fall_detected": {"zh": "跌倒报警", "en": "fall detected"},
    "water_leak": {"zh": "漏水报警", "en": "water leak"},
    "no_water_use": {"zh": "长时间未用水", "en": "no water used for a long time"},
    "no_power_use": {"zh": "长时间未用电", "en": "no electricity used for a long time"},
    "missed_routine": {"zh": "作息异常", "en": "missed daily routine"},
    "abnormal_vitals": {"zh": "体征异常", "en": "abnormal vital signs"},
    "appliance_left_on": {"zh": "电器长时间未关", "en": "appliance left on"},
    "low_battery": {"zh": "设备电量低", "en": "low battery"},
}

_TEMPLATES: dict[Language, str] = {
    "zh": "{urgent}【居家关爱】{elder}家（{address}）{event}，{time}{device}。{action}",
    "en": "{urgent}[Care alert] {event} at {elder}'s home ({address}), {time}{device}. {action}",
}
_DEVICE: dict[Language, str] = {"zh": "，设备{device}", "en": ", device {device}"}
_URGENT: dict[Language, str] = {"zh": "紧急！", "en": "URGENT: "}
_ACTION: dict[Language, str] = {
    "zh": "请立即联系老人或上门查看。",
    "en": "Please contact the elder or visit now.",
}
# What to do when it is not a matter of minutes.
_RULE_ACTION: dict[str, dict[Language, str]] = {
    "low_battery": {"zh": "请安排更换电池。", "en": "Please arrange a battery change."},
    "device_offline": {
        "zh": "请联系老人确认设备供电和网络，或安排检修。",
        "en": "Please check the device's power and network with the elder, or arrange a repair.",
    },
    "appliance_left_on": {
        "zh": "请尽快联系老人确认电器是否在用。",
        "en": "Please contact the elder soon to check whether it is in use.",
    },
}
# Several of the household's devices silent at once: the likely cause is shared.
_SEVERAL_OFFLINE: dict[Language, str] = {"zh": "多台设备同时离线", "en": "several devices offline"}
_SEVERAL_ACTION: dict[Language, str] = {
    "zh": "可能是停电、断网或家中网关故障，请联系老人确认，或安排检修。",
    "en": "The power, the network or the home hub may be down: please check with the elder, "
    "or arrange a repair.",
}


@dataclass(frozen=True, slots=True)
class AlertText:
    rule_id: str
    severity: Severity
    elder_name: str
    address: str
    device_id: str
    at: datetime


def event_name(rule_id: str, language: Language) -> str:
    names = EVENT_NAMES.get(rule_id)
    return names[language] if names else rule_id


def format_time(at: datetime, zone: ZoneInfo, language: Language) -> str:
    local = at.astimezone(zone)
    if language == "zh":
        return f"{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local:%d %b %H:%M}"


def render_alert(text: AlertText, language: Language, zone: ZoneInfo) -> str:
    """The SMS announcing an alert to a visitor or relative."""
    event = event_name(text.rule_id, language)
    action = _RULE_ACTION.get(text.rule_id, _ACTION)[language]
    if text.rule_id == "device_offline" and text.device_id == SEVERAL_DEVICES:
        event, action = _SEVERAL_OFFLINE[language], _SEVERAL_ACTION[language]
    about_household = text.device_id in (HOUSEHOLD_DEVICE, SEVERAL_DEVICES)
    return _TEMPLATES[language].format(
        urgent=_URGENT[language] if text.severity is Severity.CRITICAL else "",
        elder=text.elder_name,
        address=text.address or "-",
        event=event,
        time=format_time(text.at, zone, language),
        device="" if about_household else _DEVICE[language].format(device=text.device_id),
        action=action,
    )
