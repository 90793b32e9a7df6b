"""What people and providers answer: SMS replies, keypresses on calls, delivery reports.

- An SMS from a known number: `1`, `OK` or `收到` acknowledges the newest alert of that person's
  households that nobody has acknowledged yet; `2` or `到达` says they are on site (the newest
  alert nobody has reached yet). Anything else gets a one-line help reply; an unknown number
  gets no reply at all (nothing tells a stranger which numbers are on file). A reply handler
  given by the composition root (emergency warnings' "1 2 安全") is tried first; what it leaves
  (None) is answered here.
- A key pressed on a call: on a check-in call, 1 closes the alert as a false alarm (the elder
  is well) and any other key moves on to the next step at once; on an alert call, 1
  acknowledges it for the person called.
- A delivery report: failed or undelivered messages, and calls that were not answered (busy,
  no answer, failed), are reported to the escalation, which moves on; a check-in call that ended
  without the 1 moves on too.
"""

from __future__ import annotations

import contextlib
import logging
import re
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts.book import AlertBook, AlertNotFound, TransitionRefused
from gateway.alerts.escalation import FAILED_DELIVERY, Escalator
from gateway.alerts.messages import Texts, event_name, format_time
from gateway.alerts.notifiers.base import Purpose
from gateway.care.households import get_household
from gateway.care.phones import normalise_phone
from gateway.models import AlertStatus
from gateway.observability import GatewayMetrics
from gateway.privacy import mask_phone
from gateway.store.alerts import AlertRecord, add_event, get_alert
from gateway.store.tables import alerts, contacts, notifications

log = logging.getLogger(__name__)

WAITING_FOR_ACK = (AlertStatus.OPEN, AlertStatus.NOTIFIED, AlertStatus.ESCALATED)
ACK_WORDS = frozenset({"1", "OK", "收到", "好", "确认"})
ARRIVED_WORDS = frozenset({"2", "到达", "已到达", "到了"})
CHECKIN_WELL = "1"
ALERT_ACK_KEY = "1"

Reply = Literal["ack", "arrived", "other"]

ReplyHandler = Callable[[str, str], Awaitable[str | None]]
"""(from phone, body) -> the answer, or None when the reply is not for it."""


def classify_reply(text: str) -> Reply:
    """What an SMS reply asks for (full-width digits and letters, spaces and punctuation
    forgiven: "１", " ok。" and "收到！" all acknowledge)."""
    folded = unicodedata.normalize("NFKC", text).strip().upper()
    folded = re.sub(r"[\s\.,!?;:。，！？；：、]+", "", folded)
    if folded in ACK_WORDS:
        return "ack"
    if folded in ARRIVED_WORDS:
        return "arrived"
    return "other"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    language: str
    household_ids: list[str] | None
    """None: every household (the control room)."""


@dataclass(frozen=True, slots=True)
class Spoken:
    """What a call says back after a key, in the call's language."""

    text: str
    language: str


class Responses:
    def __init__(
        self,
        db: AsyncEngine,
        book: AlertBook,
        escalator: Escalator,
        metrics: GatewayMetrics,
        reply_handler: ReplyHandler | None = None,
    ) -> None:
        self.db = db
        self.reply_handler = reply_handler
        self.book = book
        self.escalator = escalator
        self.metrics = metrics
        self.texts: Texts = escalator.texts
        self.language = escalator.language

    # SMS replies.

    async def sms_reply(self, from_phone: str, body: str) -> str | None:
        """Act on an SMS reply; the text to answer with, or None (unknown number: silence)."""
        if self.reply_handler is not None:
            answer = await self.reply_handler(from_phone, body)
            if answer is not None:
                self.metrics.webhooks.labels("sms", "handled_elsewhere").inc()
                return answer
        person = await self._person(from_phone)
        if person is None:
            log.info("SMS from unknown number %s ignored", mask_phone(from_phone))
            self.metrics.webhooks.labels("sms", "unknown_number").inc()
            return None
        kind = classify_reply(body)
        lang = person.language
        if kind == "other":
            self.metrics.webhooks.labels("sms", "not_understood").inc()
            return self.texts.render("reply_help", lang)
        alert = await self._newest(person, arrived=kind == "arrived")
        if alert is None:
            self.metrics.webhooks.labels("sms", "nothing_open").inc()
            return self.texts.render("reply_nothing", lang)
        by = f"{person.name}（短信）" if self.language == "zh" else f"{person.name} (SMS)"
        try:
            if kind == "ack":
                alert = await self.book.acknowledge(alert.id, by)
            else:
                alert = await self.book.arrive(alert.id, by)
        except (AlertNotFound, TransitionRefused):
            return self.texts.render("reply_nothing", lang)
        self.metrics.webhooks.labels("sms", kind).inc()
        return await self._confirmation(alert, kind, lang)

    async def _person(self, phone: str) -> Person | None:
        wanted = normalise_phone(phone)
        if not wanted:
            return None
        room = self.escalator.settings.control_room
        if room.phone and normalise_phone(room.phone) == wanted:
            return Person(room.name, room.language or self.language, None)
        async with self.db.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    contacts.c.household_id,
                    contacts.c.name,
                    contacts.c.phone,
                    contacts.c.language,
                ).where(contacts.c.phone.like(f"%{wanted[-7:]}"))
            )
            found = [r for r in rows if normalise_phone(r.phone) == wanted]
        if not found:
            return None
        return Person(
            found[0].name,
            found[0].language or self.language,
            sorted({r.household_id for r in found}),
        )

    async def _newest(self, person: Person, *, arrived: bool) -> AlertRecord | None:
        """The newest alert of the person's households that waits for this answer."""
        query = sa.select(alerts.c.id).order_by(alerts.c.id.desc()).limit(1)
        if arrived:
            query = query.where(
                alerts.c.status != AlertStatus.RESOLVED.value, alerts.c.arrived_at.is_(None)
            )
        else:
            query = query.where(
                alerts.c.status.in_(
                    [
                        AlertStatus.OPEN.value,
                        AlertStatus.NOTIFIED.value,
                        AlertStatus.ESCALATED.value,
                    ]
                )
            )
        if person.household_ids is not None:
            query = query.where(alerts.c.household_id.in_(person.household_ids))
        async with self.db.connect() as conn:
            alert_id = await conn.scalar(query)
            return await get_alert(conn, alert_id) if alert_id is not None else None

    async def _confirmation(self, alert: AlertRecord, kind: Reply, lang: str) -> str:
        async with self.db.connect() as conn:
            household = await get_household(conn, alert.household_id)
        language: Literal["zh", "en"] = "en" if lang == "en" else "zh"
        zone = (
            household.zone(self.escalator.default_zone)
            if household
            else (self.escalator.default_zone)
        )
        values = {
            "elder": household.elder_name if household else alert.household_id,
            "event": event_name(alert.rule_id, language),
            "time": format_time(alert.opened_at, zone, language),
        }
        if kind == "ack":
            return self.texts.render("reply_ack", lang, **values)
        return self.texts.render(
            "reply_arrived", lang, elder=values["elder"], event=values["event"]
        )

    # Calls.

    async def keypress(self, notification_id: int, digits: str) -> Spoken:
        """Act on the key pressed on the call made for this notification."""
        async with self.db.connect() as conn:
            n = (
                await conn.execute(
                    sa.select(notifications).where(notifications.c.id == notification_id)
                )
            ).first()
        if n is None:
            self.metrics.webhooks.labels("voice", "unknown_call").inc()
            return Spoken("", self.language)
        lang = n.language
        if n.purpose == Purpose.CHECKIN.value:
            if digits == CHECKIN_WELL:
                detail = f"{n.recipient_name} pressed 1 on the check-in call"
                await self.book.checkin_answered(n.alert_id, n.recipient_name, detail)
                self.metrics.webhooks.labels("voice", "checkin_well").inc()
                return Spoken(self.texts.render("checkin_thanks", lang), lang)
            await self._failed(n.id, f"check-in call answered with {digits or 'no key'}")
            self.metrics.webhooks.labels("voice", "checkin_other_key").inc()
            return Spoken(self.texts.render("voice_other_key", lang), lang)
        if digits != ALERT_ACK_KEY:
            self.metrics.webhooks.labels("voice", "other_key").inc()
            return Spoken(self.texts.render("voice_other_key", lang), lang)
        by = (
            f"{n.recipient_name}（电话按键）"
            if self.language == "zh"
            else f"{n.recipient_name} (keypress)"
        )
        with contextlib.suppress(AlertNotFound, TransitionRefused):
            await self.book.acknowledge(n.alert_id, by)  # resolved meanwhile: thanks still apply
        self.metrics.webhooks.labels("voice", "ack").inc()
        return Spoken(self.texts.render("voice_thanks", lang), lang)

    # Delivery reports.

    async def delivery_report(self, sid: str, status: str, error_code: str | None) -> bool:
        """Record what the provider reports about a message or call; False if unknown."""
        status = status.lower()
        async with self.db.begin() as conn:
            rows = (
                await conn.execute(
                    sa.update(notifications)
                    .where(notifications.c.provider_id == sid)
                    .values(delivery_status=status[:32])
                    .returning(
                        notifications.c.id,
                        notifications.c.alert_id,
                        notifications.c.purpose,
                        notifications.c.channel,
                        notifications.c.batched_into,
                    )
                )
            ).all()
            for row in rows:
                if status in FAILED_DELIVERY and row.alert_id is not None:
                    code = f" (error {error_code})" if error_code else ""
                    now = self.escalator.clock.now()
                    detail = f"{row.channel} {status}{code}"
                    await add_event(conn, row.alert_id, now, "not_delivered", None, detail)
        if not rows:
            return False
        unanswered_checkin = status == "completed" and any(
            r.purpose == Purpose.CHECKIN.value for r in rows
        )
        if status in FAILED_DELIVERY or unanswered_checkin:
            why = f"{status}" + (f" (error {error_code})" if error_code else "")
            for row in rows:
                await self._failed(row.id, why)
        return True

    async def _failed(self, notification_id: int, why: str) -> None:
        await self.escalator.failed([notification_id], why)
