"""Visits: a household's care records on the official form (DESIGN.md §7), the ones escalations
file among them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, JsonValue

from gateway.api.deps import MAX_ROW_ID, Context, CurrentUser, ReadConn, RowId
from gateway.api.field_errors import invalid
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import VisibleHousehold
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.visit_form import VisitForm, VisitIn, is_future
from gateway.care.visit_labels import stored_form
from gateway.privacy import mask_personal_data, mask_personal_data_in
from gateway.store.visits import VisitMethod, VisitRecord, add_visit, get_visit, list_visits

router = APIRouter(prefix="/api/households", tags=["visits"], route_class=StrictJsonRoute)


class VisitOut(BaseModel):
    id: int
    seq: int | None
    """The n-th visit to this household."""
    method: VisitMethod
    visited_at: datetime
    alert_id: int | None
    """The alert the visit answered, if any."""
    visitor: str
    summary: str
    form: VisitForm
    """The findings (null where not recorded)."""
    entered_by: str
    """Who entered the record ("system" for a visit filed from an alert)."""
    details: dict[str, JsonValue]
    """The rest of the record: who was notified, who acknowledged and when, who arrived..."""


def visit_out(v: VisitRecord) -> VisitOut:
    """A visit as the API shows it, free text masked."""
    # Records name people, never their numbers; a number that got in anyway is masked.
    form = mask_personal_data_in(stored_form(v.details).model_dump(mode="json"))
    return VisitOut(
        id=v.id,
        seq=v.seq,
        method=v.method,
        visited_at=v.visited_at,
        alert_id=v.alert_id,
        visitor=v.visitor,
        summary=mask_personal_data(v.summary),
        form=VisitForm.model_validate(form),
        entered_by=v.created_by,
        details={k: mask_personal_data_in(val) for k, val in v.details.items() if k != "form"},
    )


@router.post("/{household_id}/visits", status_code=status.HTTP_201_CREATED, response_model=VisitOut)
async def create_visit(
    household_id: VisibleHousehold, body: VisitIn, context: Context, user: CurrentUser
) -> VisitOut:
    """File a visit record; it is numbered the n-th visit to the household."""
    now = context.clock.now()
    if is_future(body.visited_at, now):
        raise invalid(("body", "visited_at"), "visited_at is in the future")
    async with context.db.begin() as conn:
        visit_id = await add_visit(
            conn,
            household_id=household_id,
            method=body.method,
            visited_at=body.visited_at,
            visitor=body.visitor or user.name,
            summary=body.summary,
            details={"form": body.form.model_dump(mode="json", exclude_none=True)},
            now=now,
            by=user.name,
        )
        assert visit_id is not None
        created = await get_visit(conn, household_id, visit_id)
        assert created is not None
        await audit.record(
            conn,
            user.actor,
            "visit.create",
            now=now,
            household_id=household_id,
            target=f"visit {visit_id}",
            details={"seq": created.seq, "method": created.method.value},
        )
    return visit_out(created)


@router.get("/{household_id}/visits", response_model=list[VisitOut], responses=PAGED_RESPONSE)
async def get_visits(
    household_id: VisibleHousehold,
    conn: ReadConn,
    pages: PageQuery,
    before_id: Annotated[
        int | None, Query(ge=1, le=MAX_ROW_ID, description="the last visit of the previous page")
    ] = None,
) -> list[VisitOut]:
    """A household's visits, newest first (`offset`, or `before_id`, pages on)."""
    records = await list_visits(conn, household_id, pages.window, before_id=before_id)
    return [visit_out(v) for v in pages.answer(records)]


@router.get("/{household_id}/visits/{visit_id}", response_model=VisitOut)
async def get_one_visit(
    household_id: VisibleHousehold, visit_id: RowId, conn: ReadConn
) -> VisitOut:
    """One visit record of the household."""
    found = await get_visit(conn, household_id, visit_id)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"visit {visit_id} not found")
    return visit_out(found)
