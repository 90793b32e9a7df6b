"""A major change in an elder's situation (a fall, a spell in hospital, a spouse's death).

Recording one asks for a visit within `[care] changed_within_hours` (24 h): the reminder job
tells the elder's visitors until someone has been.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, StringConstraints

from gateway.api.deps import Context, CurrentUser
from gateway.api.scope import VisibleHousehold
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.store.changes import note_households
from gateway.store.tables import households

router = APIRouter(prefix="/api/households", tags=["households"], route_class=StrictJsonRoute)


class SituationChangeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]
    """What changed ("住院回家", "老伴去世")."""


class SituationChangeOut(BaseModel):
    household_id: str
    situation_changed_at: datetime


@router.post(
    "/{household_id}/situation-changes",
    status_code=status.HTTP_201_CREATED,
    response_model=SituationChangeOut,
)
async def record_situation_change(
    household_id: VisibleHousehold, body: SituationChangeIn, context: Context, user: CurrentUser
) -> SituationChangeOut:
    """Record a major change; the elder's visitors are reminded to visit within 24 hours."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        await conn.execute(
            sa.update(households)
            .where(households.c.id == household_id)
            .values(situation_changed_at=now, updated_at=now)
        )
        note_households(conn, (household_id,))
        await audit.record(
            conn,
            user.actor,
            "household.situation_change",
            now=now,
            household_id=household_id,
            details={"note": body.note},
        )
    return SituationChangeOut(household_id=household_id, situation_changed_at=now)
