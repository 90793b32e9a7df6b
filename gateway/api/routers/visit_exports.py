"""Exports of visit records in the form's layout: a household's workbook, a printable page per
visit, and a month's visits of an area.

ID and phone numbers are whole for admins and operators (and the export is audited), masked for
visitors.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal
from urllib.parse import quote

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import HTMLResponse, Response
from pydantic import StringConstraints

from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, ReadConn, RowId
from gateway.api.routers.reports import MonthParam
from gateway.api.scope import VisibleHousehold, in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.households import get_household
from gateway.care.services import household_services
from gateway.care.visit_export import (
    elder_infos,
    household_workbook,
    month_table,
    table_csv,
    table_xlsx,
)
from gateway.care.visit_labels import Language
from gateway.care.visit_print import render_visit_page
from gateway.reports.response import Month
from gateway.store.tables import households
from gateway.store.visits import get_visit, household_visits, visits_between

router = APIRouter(prefix="/api", tags=["visit exports"], route_class=StrictJsonRoute)

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
Place = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(filename)}"}


async def _audit_whole(
    context: Context, user: Principal, action: str, *, household_id: str | None, target: str
) -> None:
    """Whole ID numbers were handed out: who, when, which."""
    if not user.sees_personal_data:
        return
    async with context.db.begin() as conn:
        await audit.record(
            conn,
            user.actor,
            action,
            now=context.clock.now(),
            household_id=household_id,
            target=target,
        )


@router.get(
    "/households/{household_id}/visits.xlsx",
    response_class=Response,
    responses={200: {"content": {XLSX: {}}}},
)
async def household_xlsx(
    household_id: VisibleHousehold,
    context: Context,
    conn: ReadConn,
    user: CurrentUser,
    lang: Language = "zh",
) -> Response:
    """The household's visit records in the form's layout: the elder's block, the visit
    table (a row per visit), the care-service table (`lang=en`: English labels)."""
    household = await get_household(conn, household_id)
    assert household is not None
    infos = await elder_infos(conn, [household_id], whole=user.sees_personal_data)
    content = household_workbook(
        infos[household_id],
        await household_visits(conn, household_id),
        await household_services(conn, household_id),
        household.zone(context.zone),
        lang,
    )
    await _audit_whole(
        context, user, "visits.export", household_id=household_id, target="visits.xlsx"
    )
    return Response(content, media_type=XLSX, headers=_attachment(f"visits-{household_id}.xlsx"))


@router.get("/households/{household_id}/visits/{visit_id}/print", response_class=HTMLResponse)
async def print_visit(
    household_id: VisibleHousehold,
    visit_id: RowId,
    context: Context,
    conn: ReadConn,
    user: CurrentUser,
    lang: Language = "zh",
) -> HTMLResponse:
    """One visit record as a page that prints on one A4 sheet (`lang=en`: English labels)."""
    visit = await get_visit(conn, household_id, visit_id)
    if visit is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"visit {visit_id} not found")
    household = await get_household(conn, household_id)
    assert household is not None
    infos = await elder_infos(conn, [household_id], whole=user.sees_personal_data)
    page = render_visit_page(infos[household_id], visit, household.zone(context.zone), lang)
    await _audit_whole(
        context, user, "visit.print", household_id=household_id, target=f"visit {visit_id}"
    )
    return HTMLResponse(page)


@router.get(
    "/visits/export",
    response_class=Response,
    responses={200: {"content": {XLSX: {}, "text/csv": {}}}},
)
async def export_month(
    month: MonthParam,
    context: Context,
    conn: ReadConn,
    user: CurrentUser,
    county: Annotated[Place | None, Query()] = None,
    township: Annotated[Place | None, Query()] = None,
    village: Annotated[Place | None, Query()] = None,
    format: Literal["xlsx", "csv"] = "xlsx",
    lang: Language = "zh",
) -> Response:
    """Every visit record of the month (the gateway's time zone) in the caller's scope and
    the area given, one row per visit."""
    start, end = Month.parse(month).bounds(context.zone)
    where = [in_scope(user, households.c.id)]
    for column, value in (
        (households.c.county, county),
        (households.c.township, township),
        (households.c.village, village),
    ):
        if value is not None:
            where.append(column == value)
    records = await visits_between(conn, start, end, sa.and_(*where))
    infos = await elder_infos(
        conn, {v.household_id for v in records}, whole=user.sees_personal_data
    )
    header, rows = month_table(records, infos, context.zone, lang)
    await _audit_whole(
        context,
        user,
        "visits.export",
        household_id=None,
        target=f"month {month} {county or ''}{township or ''}{village or ''}".strip(),
    )
    name = f"visits-{month}"
    if format == "csv":
        return Response(
            table_csv(header, rows),
            media_type="text/csv; charset=utf-8",
            headers=_attachment(f"{name}.csv"),
        )
    # A township's month takes openpyxl a while: built off the event loop.
    content = await asyncio.to_thread(table_xlsx, month, header, rows)
    return Response(content, media_type=XLSX, headers=_attachment(f"{name}.xlsx"))
