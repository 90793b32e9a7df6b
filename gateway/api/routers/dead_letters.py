"""Dead letters: what the gateway could not use, and why (for installers and integrators)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from gateway.api.deps import ReadConn
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import AdminUser
from gateway.api.strict_json import StrictJsonRoute
from gateway.store.dead_letters import recent_dead_letters

router = APIRouter(prefix="/api/dead-letters", tags=["dead letters"], route_class=StrictJsonRoute)


class DeadLetterOut(BaseModel):
    id: int
    topic: str
    payload: str
    reason_code: str
    reason: str
    received_at: datetime


@router.get("", response_model=list[DeadLetterOut], responses=PAGED_RESPONSE)
async def list_dead_letters(
    conn: ReadConn,
    user: AdminUser,
    pages: PageQuery,
    reason: Annotated[str | None, Query(max_length=32, description="reason code")] = None,
) -> list[DeadLetterOut]:
    """The most recent dead letters, newest first (admins: they name any household)."""
    letters = await recent_dead_letters(conn, pages.window, reason_code=reason)
    return [DeadLetterOut.model_validate(d, from_attributes=True) for d in pages.answer(letters)]
