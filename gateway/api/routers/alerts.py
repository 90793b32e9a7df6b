"""Alerts: the queue operators work from; acknowledge and resolve."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AliasChoices, BaseModel, Field, StringConstraints
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.book import AlertNotFound, TransitionRefused
from gateway.alerts.policy import Policy
from gateway.api.auth import Principal
from gateway.api.context import ApiContext
from gateway.api.deps import MAX_ROW_ID, Context, CurrentUser, ReadConn
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import VisibleAlert, visible_households
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.households import ElderLabel, elder_labels
from gateway.models import AlertStatus, EvidenceValue, Severity
from gateway.privacy import mask_phone
from gateway.store.alerts import (
    AlertOrder,
    AlertRecord,
    alert_history,
    alert_notifications,
    get_alert,
    list_alerts,
)
from gateway.store.tables import escalations

router = APIRouter(prefix="/api/alerts", tags=["alerts"], route_class=StrictJsonRoute)


class AlertOut(BaseModel):
    id: int
    rule: str = Field(validation_alias=AliasChoices("rule", "rule_id"))
    severity: Severity
    status: AlertStatus
    household_id: str
    device_id: str
    summary: str
    evidence: dict[str, EvidenceValue]
    opened_at: datetime
    last_seen_at: datetime
    occurrences: int
    condition_cleared_at: datetime | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    arrived_at: datetime | None = Field(description="someone confirmed being at the home")
    arrived_by: str | None
    flagged_at: datetime | None = Field(
        description="needs the control room: it reached the control-room step (control_room), "
        "no message could be delivered (undeliverable) or nobody is on file (no_recipient)"
    )
    flag_reason: str | None
    elder_name: str | None = Field(
        default=None, description="the household's elder (lists only; null: not registered)"
    )
    village: str | None = Field(default=None, description="the household's village (lists only)")

    @classmethod
    def of(cls, alert: AlertRecord, label: ElderLabel | None = None) -> AlertOut:
        out = cls.model_validate(alert, from_attributes=True)
        if label is not None:
            out.elder_name, out.village = label.elder_name, label.village
        return out


class AlertEventOut(BaseModel):
    at: datetime
    event: str
    actor: str | None
    detail: str | None


class NotificationOut(BaseModel):
    channel: str
    recipient_role: str
    recipient_name: str
    recipient_phone: str
    reason: str
    body: str
    status: str
    attempts: int
    provider_id: str | None
    error: str | None
    created_at: datetime
    sent_at: datetime | None
    not_before: datetime | None = Field(
        description="held until then (several alerts of a household go out as one); "
        "null: sent at once"
    )
    step: int | None = Field(description="the escalation step that sent it (1 = the first)")
    purpose: str = Field(description="alert, or checkin (a call asking the elder to press 1)")
    language: str
    delivery_status: str | None = Field(
        description="what the provider reported later: delivered, undelivered, no-answer, ..."
    )
    batched: bool = Field(description="sent as part of one message about several alerts")


class EscalationOut(BaseModel):
    policy: dict[str, Any] = Field(description="the steps frozen on the alert when it opened")
    state: str = Field(description="running, acknowledged (closed loop: waiting for arrival), done")
    next_step: int = Field(description="the step to run next, 1 = the first")
    rounds: int = Field(description="how many times the last step has been repeated")
    next_at: datetime | None = Field(description="when the next step (or re-escalation) is due")
    started_at: datetime = Field(description="when escalation began (after quiet hours, if held)")
    first_contact: str | None


class AlertDetail(AlertOut):
    history: list[AlertEventOut]
    notifications: list[NotificationOut]
    escalation: EscalationOut | None


Actor = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class AckBody(BaseModel):
    by: Actor | None = None


class ResolveBody(BaseModel):
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]
    by: Actor | None = None


@router.get("", response_model=list[AlertOut], responses=PAGED_RESPONSE)
async def get_alerts(
    conn: ReadConn,
    user: CurrentUser,
    pages: PageQuery,
    alert_status: Annotated[list[AlertStatus] | None, Query(alias="status")] = None,
    household: Annotated[str | None, Query(max_length=64)] = None,
    active: Annotated[bool, Query(description="only alerts not yet resolved")] = False,
    flagged: Annotated[
        bool, Query(description="only alerts flagged for the control room, not yet resolved")
    ] = False,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    order: Annotated[
        AlertOrder,
        Query(
            description="newest: latest first; queue: critical, high, medium, low, "
            "the longest waiting first within each"
        ),
    ] = "newest",
) -> list[AlertOut]:
    """Alerts, newest first or in queue order; filter by status (repeatable), household, or
    active only."""
    records = await list_alerts(
        conn,
        statuses=alert_status,
        household_id=household,
        window=pages.window,
        before_id=before_id,
        active_only=active,
        flagged_only=flagged,
        within=visible_households(user),
        order=order,
    )
    found = pages.answer(records)
    labels = await elder_labels(conn, {a.household_id for a in found})
    return [AlertOut.of(a, labels.get(a.household_id)) for a in found]


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_one(alert_id: VisibleAlert, conn: ReadConn, user: CurrentUser) -> AlertDetail:
    """One alert with its audit trail and every message sent about it."""
    alert = await get_alert(conn, alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    history = [AlertEventOut(**asdict(e)) for e in await alert_history(conn, alert_id)]
    sent = []
    for n in await alert_notifications(conn, alert_id):
        # Whole numbers are for the elder's own page; here they are masked for everyone.
        phone = mask_phone(n.recipient_phone)
        sent.append(
            NotificationOut(
                channel=n.channel,
                recipient_role=n.recipient_role,
                recipient_name=n.recipient_name,
                recipient_phone=phone,
                reason=n.reason,
                body=n.body,
                status=n.status,
                attempts=n.attempts,
                provider_id=n.provider_id,
                error=n.error,
                created_at=n.created_at,
                sent_at=n.sent_at,
                not_before=n.not_before,
                step=n.step + 1 if n.step is not None else None,
                purpose=n.purpose,
                language=n.language,
                delivery_status=n.delivery_status,
                batched=n.batched_into is not None,
            )
        )
    return AlertDetail(
        **AlertOut.of(alert).model_dump(),
        history=history,
        notifications=sent,
        escalation=await _escalation(conn, alert_id),
    )


async def _escalation(conn: AsyncConnection, alert_id: int) -> EscalationOut | None:
    row = (
        await conn.execute(sa.select(escalations).where(escalations.c.alert_id == alert_id))
    ).first()
    if row is None:
        return None
    return EscalationOut(
        policy=row.policy,
        state=row.state,
        next_step=row.step + 1,
        rounds=row.rounds,
        next_at=row.next_at,
        started_at=row.started_at,
        first_contact=Policy.from_json(row.policy).first_contact(),
    )


@router.post("/{alert_id}/ack", response_model=AlertOut)
async def acknowledge(
    alert_id: VisibleAlert, context: Context, user: CurrentUser, body: AckBody | None = None
) -> AlertOut:
    """Someone has taken charge of the alert; escalation stops."""
    by = (body.by if body and body.by else None) or user.name
    try:
        return await _audited(
            context, user, "alert.ack", await context.book.acknowledge(alert_id, by)
        )
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found") from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


class ArriveBody(BaseModel):
    by: Actor | None = None


@router.post("/{alert_id}/arrive", response_model=AlertOut)
async def arrive(
    alert_id: VisibleAlert, context: Context, user: CurrentUser, body: ArriveBody | None = None
) -> AlertOut:
    """Someone is at the elder's home (acknowledges it too); escalation ends."""
    by = (body.by if body and body.by else None) or user.name
    try:
        return await _audited(
            context, user, "alert.arrive", await context.book.arrive(alert_id, by)
        )
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found") from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/{alert_id}/resolve", response_model=AlertOut)
async def resolve(
    alert_id: VisibleAlert, body: ResolveBody, context: Context, user: CurrentUser
) -> AlertOut:
    """Close the alert, saying what was done."""
    by = body.by or user.name
    try:
        alert = await context.book.resolve(alert_id, by, body.note)
        return await _audited(context, user, "alert.resolve", alert)
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found") from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


async def _audited(
    context: ApiContext, user: Principal, action: str, alert: AlertRecord
) -> AlertOut:
    """The audit log names the account that acted (the alert's own trail names `by`)."""
    async with context.db.begin() as conn:
        await audit.record(
            conn,
            user.actor,
            action,
            now=context.clock.now(),
            household_id=alert.household_id,
            target=f"alert {alert.id}",
            details={"by": alert.resolved_by or alert.arrived_by or alert.acknowledged_by},
        )
    return AlertOut.of(alert)
