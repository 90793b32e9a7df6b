"""Every alert ends on file as a visit (DESIGN.md §6-7): remote monitoring counts as a visit.

A resolved alert becomes a visit with method `remote_monitoring`: the event, who was notified,
who acknowledged and when, who arrived, and the resolve note. An alert the elder closed by
answering a check-in call with 1 is a `phone` visit. Names only: no phone numbers.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.messages import Language, event_name
from gateway.store.alerts import AlertRecord
from gateway.store.tables import notifications
from gateway.store.visits import VisitMethod, add_visit

CHECKIN_NOTE: dict[Language, str] = {
    "zh": "老人接听回访电话并按1：平安，误报",
    "en": "the elder answered the check-in call with 1: well, a false alarm",
}
_ROLES: dict[Language, dict[str, str]] = {
    "zh": {
        "visitor": "走访人",
        "relative": "亲属",
        "control_room": "值班室",
        "elder": "老人",
        "robot": "工作群",
    },
    "en": {
        "visitor": "visitor",
        "relative": "relative",
        "control_room": "control room",
        "elder": "elder",
        "robot": "group",
    },
}
_AUTOMATED: dict[Language, str] = {"zh": "自动回访电话", "en": "automated check-in call"}
_SYSTEM: dict[Language, str] = {"zh": "系统", "en": "system"}


async def file_visit(
    conn: AsyncConnection,
    alert: AlertRecord,
    language: Language,
    now: datetime,
    outcome: str | None = None,
) -> int | None:
    """File the visit record of a just-resolved alert (once per alert)."""
    rows = await conn.execute(
        sa.select(
            notifications.c.recipient_name,
            notifications.c.recipient_role,
            notifications.c.channel,
        )
        .where(notifications.c.alert_id == alert.id, notifications.c.status == "sent")
        .order_by(notifications.c.id)
    )
    notified: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for name, role, channel in rows:
        key = (name, role)
        if key in seen:
            continue
        seen.add(key)
        notified.append({"name": name, "role": role, "channel": channel})
    by_phone = outcome == "well"
    roles = _ROLES[language]
    event = event_name(alert.rule_id, language)
    parts = [event]
    sep, colon = ("；", "：") if language == "zh" else ("; ", ": ")
    if notified:
        names = ", ".join(f"{n['name']}（{roles.get(n['role'], n['role'])}）" for n in notified)
        parts.append(("已通知" if language == "zh" else "notified ") + names)
    if alert.acknowledged_by:
        parts.append(
            f"{alert.acknowledged_by}" + (" 确认" if language == "zh" else " acknowledged")
        )
    if alert.arrived_by:
        parts.append(f"{alert.arrived_by}" + (" 到达现场" if language == "zh" else " on site"))
    if alert.resolution_note:
        parts.append(("处理" if language == "zh" else "done") + colon + alert.resolution_note)
    details: dict[str, Any] = {
        "rule": alert.rule_id,
        "severity": alert.severity.value,
        "event": event,
        "opened_at": alert.opened_at.isoformat(),
        "notified": notified,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": _iso(alert.acknowledged_at),
        "arrived_by": alert.arrived_by,
        "arrived_at": _iso(alert.arrived_at),
        "resolved_by": alert.resolved_by,
        "resolved_at": _iso(alert.resolved_at),
        "resolution_note": alert.resolution_note,
        "outcome": outcome,
        "automatic": alert.resolved_by == "system" and alert.acknowledged_by is None,
        # The form's findings an alert knows: what happened, on the form's special-circumstances
        # line (the rest is for a visitor to judge).
        "form": {"special_circumstances": sep.join(parts)[:200]},
    }
    visitor = (
        _AUTOMATED[language]
        if by_phone
        else alert.arrived_by or alert.acknowledged_by or alert.resolved_by or _SYSTEM[language]
    )
    return await add_visit(
        conn,
        household_id=alert.household_id,
        alert_id=alert.id,
        method=VisitMethod.PHONE if by_phone else VisitMethod.REMOTE_MONITORING,
        visited_at=alert.acknowledged_at or alert.resolved_at or now,
        visitor=visitor,
        summary=sep.join(parts),
        details=details,
        now=now,
        by="system",
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
