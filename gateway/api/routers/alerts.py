"""Alerts: the queue operators work from; acknowledge and resolve."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import AliasChoices, BaseModel, Field, StringConstraints

from gateway.alerts.book import AlertNotFound, TransitionRefused
from gateway.api.deps import MAX_ROW_ID, Context, CurrentUser, ReadConn, RowId
from gateway.api.strict_json import StrictJsonRoute
from gateway.models import AlertStatus, EvidenceValue, Severity
from gateway.privacy import mask_phone
from gateway.store.alerts import (
    AlertRecord,
    alert_history,
    alert_notifications,
    get_alert,
    list_alerts,
)

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

    @classmethod
    def of(cls, alert: AlertRecord) -> AlertOut:
        return cls.model_validate(alert, from_attributes=True)


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
        description="held until then (quiet hours for low-severity alerts); null: sent at once"
    )


class AlertDetail(AlertOut):
    history: list[AlertEventOut]
    notifications: list[NotificationOut]


Actor = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class AckBody(BaseModel):
    by: Actor | None = None


class ResolveBody(BaseModel):
    note: Annotated[str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True)]
    by: Actor | None = None


@router.get("", response_model=list[AlertOut])
async def get_alerts(
    conn: ReadConn,
    user: CurrentUser,
    alert_status: Annotated[list[AlertStatus] | None, Query(alias="status")] = None,
    household: Annotated[str | None, Query(max_length=64)] = None,
    active: Annotated[bool, Query(description="only alerts not yet resolved")] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> list[AlertOut]:
    """Alerts, newest first; filter by status (repeatable), household, or active only."""
    records = await list_alerts(
        conn,
        statuses=alert_status,
        household_id=household,
        limit=limit,
        before_id=before_id,
        active_only=active,
    )
    return [AlertOut.of(a) for a in records]


@router.get("/{alert_id}", response_model=AlertDetail)
async def get_one(alert_id: RowId, conn: ReadConn, user: CurrentUser) -> AlertDetail:
    """One alert with its audit trail and every message sent about it."""
    alert = await get_alert(conn, alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found")
    history = [AlertEventOut(**asdict(e)) for e in await alert_history(conn, alert_id)]
    sent = []
    for n in await alert_notifications(conn, alert_id):
        phone = n.recipient_phone if user.sees_personal_data else mask_phone(n.recipient_phone)
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
            )
        )
    return AlertDetail(**AlertOut.of(alert).model_dump(), history=history, notifications=sent)


@router.post("/{alert_id}/ack", response_model=AlertOut)
async def acknowledge(
    alert_id: RowId, context: Context, user: CurrentUser, body: AckBody | None = None
) -> AlertOut:
    """Someone has taken charge of the alert; escalation stops."""
    by = (body.by if body and body.by else None) or user.name
    try:
        return AlertOut.of(await context.book.acknowledge(alert_id, by))
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found") from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None


@router.post("/{alert_id}/resolve", response_model=AlertOut)
async def resolve(
    alert_id: RowId, body: ResolveBody, context: Context, user: CurrentUser
) -> AlertOut:
    """Close the alert, saying what was done."""
    by = body.by or user.name
    try:
        return AlertOut.of(await context.book.resolve(alert_id, by, body.note))
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"alert {alert_id} not found") from None
    except TransitionRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
