"""Short texts, Chinese by default: who, where, what, when, what to do, how to acknowledge.

The built-in templates can be overridden per language in the settings (`[escalation]
templates`); `Texts` holds the result. Messages name the elder, the address, the event and the
time, and never carry a phone number or an ID number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
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
    "zh": "{urgent}【居家关爱】{elder}家（{address}）{event}，{time}{device}。{action}{ack}",
    "en": "{urgent}[Care alert] {event} at {elder}'s home ({address}), {time}{device}. {action}"
    "{ack}",
}

# Every template by name, per language; `[escalation] templates` may override any of them.
BUILT_IN: dict[Language, dict[str, str]] = {
    "zh": {
        "alert": _TEMPLATES["zh"],
        "ack_sms": "回复1确认，到达现场后回复2。",
        "ack_voice": "确认收到请按1。",
        "repeat": "【第{round}次提醒】",
        "reescalated": "【已由{by}确认，但{minutes}分钟内无人到达现场】",
        "checkin": "您好，这里是居家关爱服务中心，{elder}，我们关心您的情况。",
        "checkin_prompt": "如果您一切平安，请按1。",
        "checkin_thanks": "谢谢您，祝您平安。我们已记录。",
        "voice_thanks": "已确认，谢谢。请尽快联系老人或上门查看。",
        "voice_other_key": "未收到确认。",
        "digest": "【居家关爱】{elder}家（{address}）{count}条报警：{events}。{ack}",
        "reply_ack": "已确认：{elder}家{event}（{time}），由您负责跟进。到达现场后请回复2。",
        "reply_arrived": "已记录您到达{elder}家（{event}）。处理完毕请在系统中填写结果。",
        "reply_nothing": "您负责的老人目前没有待处理的报警。",
        "reply_help": "回复1确认报警，到达现场后回复2。",
        "robot_title": "{urgent}{event}：{elder}家",
        "robot_body": "**{urgent}{event}**\n\n- 老人：{elder}\n- 地址：{address}\n- 时间：{time}"
        "\n- {action}",
        "robot_link": "[确认报警]({link})",
    },
    "en": {
        "alert": _TEMPLATES["en"],
        "ack_sms": " Reply 1 to acknowledge, 2 when you are there.",
        "ack_voice": "Press 1 to acknowledge.",
        "repeat": "[Reminder {round}] ",
        "reescalated": "[Acknowledged by {by}, but nobody on site within {minutes} min] ",
        "checkin": "Hello {elder}, this is the home care service checking on you.",
        "checkin_prompt": "If you are well, please press 1.",
        "checkin_thanks": "Thank you. Take care.",
        "voice_thanks": "Acknowledged, thank you. Please contact the elder or visit now.",
        "voice_other_key": "Not acknowledged.",
        "digest": "[Care alert] {count} alerts at {elder}'s home ({address}): {events}.{ack}",
        "reply_ack": "Acknowledged: {event} at {elder}'s home ({time}) is yours. Reply 2 when "
        "you are there.",
        "reply_arrived": "Noted: you are at {elder}'s home ({event}). Please record the outcome.",
        "reply_nothing": "No alert is waiting for you.",
        "reply_help": "Reply 1 to acknowledge an alert, 2 when you are there.",
        "robot_title": "{urgent}{event}: {elder}",
        "robot_body": "**{urgent}{event}**\n\n- Elder: {elder}\n- Address: {address}\n- Time: "
        "{time}\n- {action}",
        "robot_link": "[Acknowledge]({link})",
    },
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


def alert_fields(text: AlertText, language: Language, zone: ZoneInfo) -> dict[str, str]:
    """The parts of an alert's message, by template placeholder."""
    event = event_name(text.rule_id, language)
    action = _RULE_ACTION.get(text.rule_id, _ACTION)[language]
    if text.rule_id == "device_offline" and text.device_id == SEVERAL_DEVICES:
        event, action = _SEVERAL_OFFLINE[language], _SEVERAL_ACTION[language]
    about_household = text.device_id in (HOUSEHOLD_DEVICE, SEVERAL_DEVICES)
    return {
        "urgent": _URGENT[language] if text.severity is Severity.CRITICAL else "",
        "elder": text.elder_name,
        "address": text.address or "-",
        "event": event,
        "time": format_time(text.at, zone, language),
        "device": "" if about_household else _DEVICE[language].format(device=text.device_id),
        "action": action,
        "ack": "",
    }


def render_alert(text: AlertText, language: Language, zone: ZoneInfo) -> str:
    """The SMS announcing an alert to a visitor or relative (built-in template, no reply hint)."""
    return _TEMPLATES[language].format_map(alert_fields(text, language, zone))


class TemplateError(ValueError):
    """A configured template names a placeholder that does not exist."""


class _Missing(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise TemplateError(f"unknown placeholder {{{key}}}")


# What each template may use (checked when the settings are loaded).
_ALERT_KEYS = ("urgent", "elder", "address", "event", "time", "device", "action", "ack")
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "alert": _ALERT_KEYS,
    "ack_sms": (),
    "ack_voice": (),
    "repeat": ("round",),
    "reescalated": ("by", "minutes"),
    "checkin": ("elder",),
    "checkin_prompt": (),
    "checkin_thanks": (),
    "voice_thanks": (),
    "voice_other_key": (),
    "digest": ("elder", "address", "count", "events", "ack"),
    "reply_ack": ("elder", "event", "time"),
    "reply_arrived": ("elder", "event"),
    "reply_nothing": (),
    "reply_help": (),
    "robot_title": ("urgent", "event", "elder"),
    "robot_body": ("urgent", "event", "elder", "address", "time", "action"),
    "robot_link": ("link",),
}


class Texts:
    """The templates in force: the built-in ones with the settings' overrides."""

    def __init__(self, overrides: Mapping[Any, Mapping[str, str]] | None = None) -> None:
        self._templates: dict[str, dict[str, str]] = {
            lang: dict(templates) for lang, templates in BUILT_IN.items()
        }
        for lang, templates in (overrides or {}).items():
            if lang not in self._templates:
                raise TemplateError(f"unknown language {lang!r} (zh or en)")
            for name, template in templates.items():
                if name not in PLACEHOLDERS:
                    raise TemplateError(
                        f"unknown template {name!r} (one of {', '.join(PLACEHOLDERS)})"
                    )
                try:
                    template.format_map(_Missing({k: "" for k in PLACEHOLDERS[name]}))
                except (ValueError, IndexError) as exc:
                    raise TemplateError(f"template {lang}.{name}: {exc}") from None
                self._templates[lang][name] = template

    def render(self, name: str, language: str, **values: object) -> str:
        lang = language if language in self._templates else "zh"
        return self._templates[lang][name].format_map({k: str(v) for k, v in values.items()})
