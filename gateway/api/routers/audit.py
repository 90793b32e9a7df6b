"""The audit log, for admins: every change, and every view of a whole citizen ID number."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BaseModel

from gateway.api.deps import MAX_ROW_ID, ReadConn
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import AdminUser
from gateway.api.strict_json import StrictJsonRoute
from gateway.care.audit import list_entries

router = APIRouter(prefix="/api/audit", tags=["audit"], route_class=StrictJsonRoute)


class AuditOut(BaseModel):
    id: int
    at: datetime
    actor: str
    actor_role: str
    account_id: int | None
    action: str
    household_id: str | None
    target: str
    details: dict[str, Any]


@router.get("", response_model=list[AuditOut], responses=PAGED_RESPONSE)
async def list_audit(
    conn: ReadConn,
    user: AdminUser,
    pages: PageQuery,
    household_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    account_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
    since: AwareDatetime | None = None,
    before_id: Annotated[int | None, Query(ge=1, le=MAX_ROW_ID)] = None,
) -> list[AuditOut]:
    """Entries, newest first; `offset`, or `before_id` (the last one of a page), pages on."""
    entries = await list_entries(
        conn,
        household_id=household_id,
        action=action,
        account_id=account_id,
        since=since,
        window=pages.window,
        before_id=before_id,
    )
    return [AuditOut.model_validate(e, from_attributes=True) for e in pages.answer(entries)]
