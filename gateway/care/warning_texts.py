"""The words of emergency warnings: the SMS to visitors and the answers to their replies.

Chinese by default, English for people whose language is en. Messages name elders and their
addresses, never a phone number. A long list is split over several messages, each short
enough for one row of the notifications table and one provider request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from gateway.care.warning_replies import Mark
from gateway.privacy import mask_personal_data

Kind = Literal["typhoon", "rainstorm", "heat", "cold_wave", "earthquake", "geological", "other"]
Level = Literal["blue", "yellow", "orange", "red"]
Language = Literal["zh", "en"]

KIND_NAMES: dict[Kind, tuple[str, str]] = {
    "typhoon": ("台风", "typhoon"),
    "rainstorm": ("暴雨洪涝", "rainstorm / flood"),
    "heat": ("高温", "heat"),
    "cold_wave": ("寒潮", "cold wave"),
    "earthquake": ("地震", "earthquake"),
    "geological": ("地质灾害", "geological hazard"),
    "other": ("突发事件", "emergency"),
}
LEVEL_NAMES: dict[Level, tuple[str, str]] = {
    "blue": ("蓝色", "blue"),
    "yellow": ("黄色", "yellow"),
    "orange": ("橙色", "orange"),
    "red": ("红色", "red"),
}
MARK_NAMES: dict[Mark, tuple[str, str]] = {
    "checked": ("已查看", "checked"),
    "safe": ("安全", "safe"),
    "shelter": ("已转移安置", "moved to shelter"),
}
MAX_MESSAGE = 900
"""Characters per message: the notifications table keeps 1,000."""
MAX_FIELD = 35
"""Characters per template variable (Alibaba Cloud's limit for most variable types)."""
MAX_BODY = 300
"""The warning's text in an SMS is cut here (the full text is on the API)."""


@dataclass(frozen=True, slots=True)
class ElderLine:
    """One elder in a visitor's message: the warning-wide number replies name them by."""

    number: int
    name: str
    village: str
    address_detail: str


def language_of(value: str | None) -> Language:
    return "en" if value == "en" else "zh"


def _pick(names: tuple[str, str], lang: Language) -> str:
    return names[1] if lang == "en" else names[0]


def _line(elder: ElderLine, lang: Language) -> str:
    place = mask_personal_data(" ".join(p for p in (elder.village, elder.address_detail) if p))
    sep = ", " if lang == "en" else " "
    return f"{elder.number}. {elder.name}{sep if place else ''}{place}"


@dataclass(frozen=True, slots=True)
class WarningSms:
    body: str
    fields: dict[str, str]
    """The same message as the variables of the approved alert template, for providers that
    send no free text (Alibaba Cloud: docs/escalation.md); each at most 35 characters."""


def warning_messages(
    *,
    title: str,
    body: str,
    kind: Kind,
    level: Level,
    area: str,
    time: str,
    elders: Sequence[ElderLine],
    lang: Language,
) -> list[WarningSms]:
    """The SMS telling a visitor of a warning and of their elders in its area (one or more)."""
    level_name, kind_name = _pick(LEVEL_NAMES[level], lang), _pick(KIND_NAMES[kind], lang)
    if lang == "en":
        head = f"[{level_name} {kind_name} warning] {title}"
        ask = "Please check on these elders now and reply with their numbers and how they are:"
        how = 'Reply e.g. "1 safe", "1 2 checked", "3 shelter", or "all safe".'
        more = "(continued)"
        event = f"{level_name} {kind_name} warning"
    else:
        head = f"【{level_name}{kind_name}预警】{title}"
        ask = "请立即查看以下老人，并回复编号和情况："
        how = "回复示例：“1 安全”“1 2 已查看”“3 转移”（已转移安置），或“全部安全”。"
        more = "（续）"
        event = f"{level_name}{kind_name}预警"
    if len(body) > MAX_BODY:
        body = body[: MAX_BODY - 1] + "…"
    start = current = f"{head}\n{body}\n{ask}"
    chunks: list[tuple[str, list[ElderLine]]] = []
    theirs: list[ElderLine] = []
    for elder in elders:
        line = _line(elder, lang)
        if current != start and len(current) + len(line) + len(how) + 2 > MAX_MESSAGE:
            chunks.append((current, theirs))
            start = current = f"{head}{more}"
            theirs = []
        current += f"\n{line}"
        theirs.append(elder)
    chunks.append((f"{current}\n{how}", theirs))
    return [
        WarningSms(
            text[:MAX_MESSAGE],
            _fields(event, area, time, part, lang),
        )
        for text, part in chunks
    ]


def _fields(
    event: str, area: str, time: str, elders: Sequence[ElderLine], lang: Language
) -> dict[str, str]:
    names = _names(elders, lang)
    if len(names) > MAX_FIELD:
        rest = f"等{len(elders)}位" if lang == "zh" else f" ({len(elders)} in all)"
        names = names[: MAX_FIELD - len(rest) - 1] + "…" + rest
    if lang == "en":
        return {
            "elder": names,
            "address": area[:MAX_FIELD],
            "event": event[:MAX_FIELD],
            "time": time,
            "action": "Check on them now.",
            "ack": ' Reply e.g. "1 safe" or "all safe".',
        }
    return {
        "elder": names,
        "address": area[:MAX_FIELD],
        "event": event[:MAX_FIELD],
        "time": time,
        "action": "请立即查看老人情况，",
        "ack": "回复编号和情况，如“1 安全”“全部安全”",
    }


@dataclass(frozen=True, slots=True)
class ReplyOutcome:
    """What a reply did: the elders marked, numbers refused, the sender's elders still pending."""

    title: str
    status: Mark
    marked: Sequence[ElderLine]
    refused: Sequence[int]
    pending: Sequence[ElderLine]


def _names(elders: Sequence[ElderLine], lang: Language) -> str:
    sep = ", " if lang == "en" else "、"
    return sep.join(f"{e.number} {e.name}" for e in elders)


def reply_answer(outcome: ReplyOutcome, lang: Language) -> str:
    """The SMS confirming what a reply marked and saying who is still pending."""
    status = _pick(MARK_NAMES[outcome.status], lang)
    refused = " ".join(str(n) for n in outcome.refused)
    parts: list[str] = []
    if lang == "en":
        if outcome.marked:
            parts.append(f"Recorded for {outcome.title}: {_names(outcome.marked, lang)} {status}.")
        if refused:
            parts.append(f"Not one of your elders in this warning: {refused}.")
        if outcome.pending:
            parts.append(f"Still to report: {_names(outcome.pending, lang)}.")
        else:
            parts.append("All your elders are accounted for. Thank you.")
        return " ".join(parts)
    if outcome.marked:
        parts.append(f"已记录（{outcome.title}）：{_names(outcome.marked, lang)} {status}。")
    if refused:
        parts.append(f"以下编号不是您在本次预警中负责的老人：{refused}。")
    if outcome.pending:
        parts.append(f"尚待回复：{_names(outcome.pending, lang)}。")
    else:
        parts.append("您负责的老人已全部确认，谢谢！")
    return "".join(parts)


def reply_help(title: str, pending: Sequence[ElderLine], lang: Language) -> str:
    """The reply syntax again, for a reply that named a status but not clearly whom."""
    if lang == "en":
        waiting = f" Still to report: {_names(pending, lang)}." if pending else ""
        return (
            f'{title}: reply with numbers and a status, e.g. "1 safe", "1 2 checked", '
            f'"3 shelter", or "all safe".{waiting}'
        )
    waiting = f"尚待回复：{_names(pending, lang)}。" if pending else ""
    return f"{title}：请回复编号和情况，例如“1 安全”“1 2 已查看”“3 转移”或“全部安全”。{waiting}"
