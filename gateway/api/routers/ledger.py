"""The elders' ledger as a spreadsheet: import (all rows or none) and export, in the caller's
scope."""

from __future__ import annotations

import asyncio
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from gateway.api.deps import Context, CurrentUser
from gateway.api.scope import StaffUser, in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.ledger import (
    XLSX_MEDIA_TYPE,
    LedgerUnreadable,
    ledger_rows,
    sheet_kind,
    to_csv,
    to_xlsx,
)
from gateway.care.ledger_store import import_ledger, ledger_registry
from gateway.care.registry import AreaFilter, find_households
from gateway.store.tables import households

router = APIRouter(prefix="/api/ledger", tags=["ledger"], route_class=StrictJsonRoute)

MAX_LEDGER_BYTES = 32 * 1024 * 1024
"""A county's ledger of 10,000 elders is about 3 MB as CSV: the API's 1 MB would refuse it."""

Filter = Annotated[str | None, Query(max_length=100)]


class ImportOut(BaseModel):
    imported: int
    """Households created."""
    updated: int
    """Registered households whose registry the file replaced."""
    dry_run: bool


class RowErrorOut(BaseModel):
    row: int
    column: str
    msg: str


class ImportRefused(BaseModel):
    detail: str
    errors: list[RowErrorOut]


def _refused(detail: str, errors: list[RowErrorOut]) -> JSONResponse:
    body = ImportRefused(detail=detail, errors=errors).model_dump()
    return JSONResponse(body, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


@router.post(
    "/import",
    response_model=ImportOut,
    responses={422: {"model": ImportRefused}},
    max_body_size=MAX_LEDGER_BYTES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {"schema": {"type": "string"}},
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
            },
        }
    },
)
async def import_file(
    request: Request,
    context: Context,
    user: StaffUser,
    dry_run: Annotated[bool, Query(description="check every row, import nothing")] = False,
) -> ImportOut | JSONResponse:
    """Import a ledger (the file as the body: text/csv or XLSX): every row is checked first;
    one bad row and nothing is imported, and every bad row is named."""
    data = await request.body()
    if not data:
        return _refused("the body is empty: send the ledger file", [])
    now = context.clock.now()
    try:
        outcome = await import_ledger(
            context.db,
            data,
            sheet_kind(request.headers.get("content-type", ""), data),
            actor=user.actor,
            township=(user.township or "") if user.role == "operator" else None,
            now=now,
            today=now.astimezone(context.zone).date(),
            dry_run=dry_run,
        )
    except LedgerUnreadable as exc:
        return _refused(str(exc), [])
    if outcome.errors:
        errors = [RowErrorOut(row=e.row, column=e.column, msg=e.msg) for e in outcome.errors]
        rows = len({e.row for e in outcome.errors})
        return _refused(f"{rows} rows have errors: nothing was imported", errors)
    for household_id in outcome.household_ids:
        context.directory.remember(household_id)
    for household_id in outcome.to_reload:
        await context.household_changed(household_id)
    return ImportOut(imported=outcome.created, updated=outcome.replaced, dry_run=dry_run)


@router.get(
    "/export",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}, XLSX_MEDIA_TYPE: {}}}},
)
async def export_file(
    context: Context,
    user: CurrentUser,
    format: Literal["csv", "xlsx"] = "xlsx",
    county: Filter = None,
    township: Filter = None,
    village: Filter = None,
) -> Response:
    """The ledger of the households the caller may see, in the import's columns. ID and phone
    numbers whole for admin and operator (audited), masked for visitors."""
    whole = user.sees_personal_data
    now = context.clock.now()
    async with context.db.begin() as conn:
        found = await find_households(
            conn, in_scope(user, households.c.id), AreaFilter(county, township, village)
        )
        await audit.record(
            conn,
            user.actor,
            "ledger.export",
            now=now,
            details={"rows": len(found), "format": format, "whole": whole},
        )
    rows = ledger_rows(ledger_registry(h, whole) for h in found)
    # A county's workbook takes openpyxl seconds: built off the event loop.
    content, media = (
        (to_csv(rows), "text/csv; charset=utf-8")
        if format == "csv"
        else (await asyncio.to_thread(to_xlsx, rows), XLSX_MEDIA_TYPE)
    )
    day = now.astimezone(context.zone).date().isoformat()
    return Response(
        content,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="ledger-{day}.{format}"'},
    )
