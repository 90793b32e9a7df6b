"""Messages about no alert (a visit reminder, an emergency warning to visitors).

They are queued as notifications without an alert, in the caller's transaction, so the message
stands or falls with what it reports. The dispatcher then sends them like any other: claimed,
retried, on the configured provider, with delivery reports.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.notifiers.base import Channel, Purpose
from gateway.store.tables import notifications


async def queue_message(
    conn: AsyncConnection,
    *,
    purpose: Purpose,
    recipient_role: str,
    name: str,
    phone: str,
    body: str,
    language: str,
    reason: str,
    now: datetime,
    channel: Channel = Channel.SMS,
    fields: Mapping[str, str] | None = None,
) -> int:
    """Queue one message to one person; its notification id (submit it after the commit)."""
    result = await conn.execute(
        sa.insert(notifications)
        .values(
            alert_id=None,
            channel=channel.value,
            recipient_role=recipient_role[:16],
            recipient_name=name[:100],
            recipient_phone=phone,
            reason=reason[:200],
            body=body[:1000],
            status="pending",
            attempts=0,
            created_at=now,
            purpose=purpose.value,
            language=language,
            fields=dict(fields) if fields else None,
        )
        .returning(notifications.c.id)
    )
    return int(result.scalar_one())
