"""Visitors' SMS replies to emergency warnings ("1 2 安全", "全部安全").

Tried before the alerts' replies (`Responses` is given `WarningSmsReplies` as its reply
handler): a reply with a warning status word, from a visitor with elders in an open warning,
marks them in the newest such warning. Anything else returns None and the alerts answer it as
before ("1", "OK", "收到", "2", "到达").
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.care import audit
from gateway.care.households import households_visited_by
from gateway.care.phones import normalise_phone
from gateway.care.warning_replies import Unclear, WarningReply, parse_reply
from gateway.care.warning_texts import (
    Language,
    ReplyOutcome,
    language_of,
    reply_answer,
    reply_help,
)
from gateway.care.warnings import (
    Check,
    checks_of,
    list_warnings,
    mark,
)
from gateway.clock import Clock
from gateway.privacy import mask_phone
from gateway.store.paging import Window

log = logging.getLogger(__name__)


class WarningSmsReplies:
    """Marks elders from visitors' SMS replies; the answer to send back, or None."""

    def __init__(self, db: AsyncEngine, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    async def __call__(self, from_phone: str, body: str) -> str | None:
        parsed = parse_reply(body)
        phone = normalise_phone(from_phone)
        if parsed is None or not phone:
            return None
        mine = households_visited_by(from_phone)
        now = self.clock.now()
        async with self.db.begin() as conn:
            newest = await list_warnings(
                conn, households_in=mine, open_only=True, window=Window(limit=1)
            )
            if not newest.items:
                return None
            warning = newest.items[0]
            checks = await checks_of(conn, warning.id, households_in=mine)
            name, lang = _sender(checks, phone)
            if isinstance(parsed, Unclear):
                pending = [c.elder for c in checks if c.status == "pending"]
                return reply_help(warning.title, pending, lang)
            targets, refused = _targets(parsed, checks)
            by = f"{name}（短信）" if lang == "zh" else f"{name} (SMS)"
            for check in targets:
                await mark(conn, warning.id, check.household_id, parsed.status, by=by, now=now)
                await audit.record(
                    conn,
                    audit.Actor(name, "visitor"),
                    "warning.check",
                    now=now,
                    household_id=check.household_id,
                    target=f"warning {warning.id}",
                    details={"status": parsed.status, "via": "sms", "number": check.number},
                )
        log.info(
            "warning %s: %s marked %s %s by SMS",
            warning.id,
            mask_phone(from_phone),
            [c.number for c in targets],
            parsed.status,
        )
        marked = {c.household_id for c in targets}
        outcome = ReplyOutcome(
            title=warning.title,
            status=parsed.status,
            marked=[c.elder for c in targets],
            refused=refused,
            pending=[
                c.elder for c in checks if c.status == "pending" and c.household_id not in marked
            ],
        )
        return reply_answer(outcome, lang)


def _sender(checks: list[Check], phone: str) -> tuple[str, Language]:
    """The sender's name and language, as their elders' records give them."""
    for check in checks:
        for visitor in check.visitors:
            if normalise_phone(visitor.phone) == phone:
                return visitor.name, language_of(visitor.language)
    return phone[-4:], "zh"


def _targets(reply: WarningReply, checks: list[Check]) -> tuple[list[Check], list[int]]:
    """The sender's checks the reply names, and the numbers that are not theirs."""
    if reply.numbers is None:
        return [c for c in checks if c.status == "pending"], []
    by_number = {c.number: c for c in checks}
    return (
        [by_number[n] for n in reply.numbers if n in by_number],
        [n for n in reply.numbers if n not in by_number],
    )
