"""The monthly visit rate per area (GET /api/reports/coverage), as JSON, CSV or XLSX."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response
from pydantic import AfterValidator, BaseModel, Field

from gateway.api.deps import Context, CurrentUser, ReadConn
from gateway.api.field_errors import invalid
from gateway.api.routers.reports import real_month
from gateway.api.scope import in_scope
from gateway.api.strict_json import StrictJsonRoute
from gateway.reports.coverage import AreaCoverage, CoverageReport, Level, month_of
from gateway.reports.coverage_files import MEDIA_TYPES, FileFormat, coverage_file, file_name
from gateway.reports.response import Month
from gateway.store.coverage import coverage_report
from gateway.store.tables import households

router = APIRouter(prefix="/api/reports", tags=["reports"], route_class=StrictJsonRoute)


MonthParam = Annotated[
    str | None,
    Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-11"], description="YYYY-MM; default: now"),
    AfterValidator(lambda v: None if v is None else real_month(v)),
]


class AreaOut(BaseModel):
    county: str | None
    township: str | None
    village: str | None = Field(description="null above the report's level, and on the total")
    elders: int = Field(description="elders in the programme during the month")
    visited: int = Field(description="of them, visited at least once in the month (any method)")
    rate: float | None = Field(description="visited / elders, 0-1; null: no elders")
    percent: float | None = Field(description="the rate in percent, one decimal")


class UnvisitedOut(BaseModel):
    household_id: str
    elder_name: str
    county: str
    township: str
    village: str
    visitors: list[str] = Field(description="their visitors' names")


class CoverageOut(BaseModel):
    month: str
    zone: str
    level: Level
    areas: list[AreaOut]
    total: AreaOut
    not_visited: list[UnvisitedOut]


def _area(area: AreaCoverage) -> AreaOut:
    return AreaOut.model_validate(area, from_attributes=True)


def coverage_out(report: CoverageReport) -> CoverageOut:
    return CoverageOut(
        month=report.month,
        zone=report.zone,
        level=report.level,
        areas=[_area(a) for a in report.areas],
        total=_area(report.total),
        not_visited=[
            UnvisitedOut(
                household_id=u.household_id,
                elder_name=u.elder_name,
                county=u.county,
                township=u.township,
                village=u.village,
                visitors=list(u.visitors),
            )
            for u in report.not_visited
        ],
    )


@router.get("/coverage", response_model=CoverageOut)
async def coverage(
    context: Context,
    conn: ReadConn,
    user: CurrentUser,
    month: MonthParam = None,
    level: Level = "village",
    format: Annotated[Literal["json", "csv", "xlsx"], Query()] = "json",
) -> CoverageOut | Response:
    """Per area: the elders in the programme during the month (the gateway's zone), those
    visited at least once by any method, the rate, and who is not yet visited; the caller's
    households only (an operator's township, a visitor's own elders)."""
    current = month_of(context.clock.now(), context.zone)
    wanted = current if month is None else Month.parse(month)
    if (wanted.year, wanted.month) > (current.year, current.month):
        raise invalid(("query", "month"), "a month not in the future")
    report = await coverage_report(
        conn, wanted, context.zone, level, where=in_scope(user, households.c.id)
    )
    if format == "json":
        return coverage_out(report)
    file_format: FileFormat = format
    return Response(
        coverage_file(report, file_format),
        media_type=MEDIA_TYPES[file_format],
        headers={"Content-Disposition": f'attachment; filename="{file_name(report, file_format)}"'},
    )
