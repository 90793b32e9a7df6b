"""The audit log: every change to the records, and every view of a whole citizen ID number."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.privacy import mask_personal_data, mask_personal_data_in
from gateway.store.care_tables import audit_log
from gateway.store.paging import Page, Window, fetch_page


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did it: a person's name and role, and their account when they have one."""

    name: str
    role: str
    account_id: int | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    actor_role: str
    account_id: int | None
    action: str
    household_id: str | None
    target: str
    details: dict[str, Any]


async def record(
    conn: AsyncConnection,
    actor: Actor,
    action: str,
    *,
    now: datetime,
    household_id: str | None = None,
    target: str = "",
    details: Mapping[str, Any] | None = None,
) -> None:
    """Add an entry in the caller's transaction, so it stands or falls with the change."""
    await conn.execute(
        sa.insert(audit_log).values(
            at=now,
            actor=actor.name[:100],
            actor_role=actor.role,
            account_id=actor.account_id,
            action=action,
            household_id=household_id,
            target=mask_personal_data(target)[:200],
            # The log holds no whole ID or phone number: admins read it for years.
            details=mask_personal_data_in(dict(details or {})),
        )
    )


@dataclass(frozen=True, slots=True)
class Change:
    """One entry of a batch (`record_many`): what happened to which household."""

    action: str
    household_id: str | None = None
    target: str = ""
    details: Mapping[str, Any] | None = None


async def record_many(
    conn: AsyncConnection, actor: Actor, changes: Sequence[Change], *, now: datetime
) -> None:
    """Add many entries in one statement (an import of thousands of households)."""
    if not changes:
        return
    await conn.execute(
        sa.insert(audit_log),
        [
            {
                "at": now,
                "actor": actor.name[:100],
                "actor_role": actor.role,
                "account_id": actor.account_id,
                "action": c.action,
                "household_id": c.household_id,
                "target": mask_personal_data(c.target)[:200],
                "details": mask_personal_data_in(dict(c.details or {})),
            }
            for c in changes
        ],
    )


async def list_entries(
    conn: AsyncConnection,
    *,
    household_id: str | None = None,
    action: str | None = None,
    account_id: int | None = None,
    since: datetime | None = None,
    window: Window,
    before_id: int | None = None,
) -> Page[AuditEntry]:
    """Entries, newest first, filtered by what is given."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc())
    if household_id is not None:
        query = query.where(audit_log.c.household_id == household_id)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    if account_id is not None:
        query = query.where(audit_log.c.account_id == account_id)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return await fetch_page(conn, query, window, _entry)


def _entry(r: sa.Row[Any]) -> AuditEntry:
    return AuditEntry(
        id=r.id,
        at=r.at,
        actor=r.actor,
        actor_role=r.actor_role,
        account_id=r.account_id,
        action=r.action,
        household_id=r.household_id,
        target=r.target,
        details=dict(r.details),
    )
