"""Reports over a month: how fast alerts were acknowledged."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AfterValidator, BaseModel, Field

from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, ReadConn
from gateway.api.scope import visible_households
from gateway.api.strict_json import StrictJsonRoute
from gateway.reports.response import Month, Times, response_report
from gateway.store.response_times import alert_timings

router = APIRouter(prefix="/api/reports", tags=["reports"], route_class=StrictJsonRoute)


def _may_read_reports(user: CurrentUser) -> Principal:
    # A visitor sees the elders assigned to them, not the whole county's alerts.
    if user.role not in ("admin", "operator"):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "not allowed to read reports")
    return user


ReportReader = Annotated[Principal, Depends(_may_read_reports)]


def real_month(value: str) -> str:
    """A YYYY-MM month that exists (2026-13 does not)."""
    Month.parse(value)  # a ValueError is a 422 like any other validation error
    return value


MonthParam = Annotated[
    str,
    Query(pattern=r"^\d{4}-\d{2}$", examples=["2026-11"], description="YYYY-MM"),
    AfterValidator(real_month),
]


class BandOut(BaseModel):
    minutes: int
    acknowledged: int
    share: float | None = Field(description="of all the group's alerts; null: no alerts")


class TimesOut(BaseModel):
    alerts: int
    acknowledged: int
    within: list[BandOut]
    median_s: float | None = Field(description="of acknowledged alerts, by nearest rank")
    p90_s: float | None


class SeverityOut(TimesOut):
    severity: str


class VillageOut(TimesOut):
    county: str
    township: str
    village: str


class TargetOut(BaseModel):
    within_s: int
    share: float = Field(description="the share the standard asks for")
    achieved: float | None
    met: bool | None


class UnacknowledgedOut(BaseModel):
    id: int
    rule: str
    severity: str
    household_id: str
    village: str
    started_at: datetime
    status: str
    flagged: bool
    resolved_by: str | None
    auto_resolved: bool = Field(description="resolved by the gateway before anyone acknowledged")


class ResponseReportOut(BaseModel):
    month: str
    zone: str
    start: datetime
    end: datetime
    overall: TimesOut
    standard: list[TargetOut]
    standard_met: bool | None = Field(description="every target met; null: no alerts")
    by_severity: list[SeverityOut]
    by_village: list[VillageOut]
    unacknowledged: list[UnacknowledgedOut]


def _times(t: Times) -> dict[str, object]:
    return TimesOut.model_validate(t, from_attributes=True).model_dump()


@router.get("/response", response_model=ResponseReportOut)
async def response_times(
    month: MonthParam, context: Context, conn: ReadConn, user: ReportReader
) -> ResponseReportOut:
    """Alerts whose escalation started in the month (the gateway's zone): the share
    acknowledged within 1, 3, 5 and 15 minutes overall, by severity and by village; median
    and 90th percentile; the 60 s / 97.5 % and 180 s / 99 % standard; those never acknowledged.
    An operator's report covers their township."""
    wanted = Month.parse(month)
    start, end = wanted.bounds(context.zone)
    timings = await alert_timings(conn, start, end, within=visible_households(user))
    report = response_report(wanted, context.zone, timings)
    return ResponseReportOut(
        month=report.month,
        zone=report.zone,
        start=report.start,
        end=report.end,
        overall=TimesOut.model_validate(report.overall, from_attributes=True),
        standard=[TargetOut.model_validate(t, from_attributes=True) for t in report.standard],
        standard_met=report.standard_met,
        by_severity=[
            SeverityOut.model_validate({"severity": s.severity, **_times(s.times)})
            for s in report.by_severity
        ],
        by_village=[
            VillageOut.model_validate(
                {
                    "county": v.county,
                    "township": v.township,
                    "village": v.village,
                    **_times(v.times),
                }
            )
            for v in report.by_village
        ],
        unacknowledged=[
            UnacknowledgedOut.model_validate(u, from_attributes=True) for u in report.unacknowledged
        ],
    )
