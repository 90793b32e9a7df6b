"""A household's charts: water and electricity use and vitals over a day or a week."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from gateway.api.deps import Context, ReadConn
from gateway.api.scope import VisibleHousehold
from gateway.api.strict_json import StrictJsonRoute
from gateway.store.series import RANGES, SeriesRange, Window, household_series

router = APIRouter(prefix="/api/households", tags=["households"], route_class=StrictJsonRoute)

Point = tuple[datetime, float | None]


class VitalsOut(BaseModel):
    heart_rate_bpm: list[tuple[datetime, float]]
    spo2_pct: list[tuple[datetime, float]]
    bp_systolic_mmhg: list[tuple[datetime, float]]
    bp_diastolic_mmhg: list[tuple[datetime, float]]
    body_temp_c: list[tuple[datetime, float]]


class SeriesOut(BaseModel):
    range: SeriesRange
    start: datetime
    end: datetime
    bucket_s: int = Field(description="900 (15 min) for 24h, 3600 for 7d; UTC-aligned")
    water_l: list[Point] = Field(description="litres used per bucket; null: no reading")
    energy_kwh: list[Point] = Field(description="kWh used per bucket; null: no reading")
    power_w: list[Point] = Field(description="mean power per bucket; null: none reported")
    vitals: VitalsOut = Field(description="readings as taken, the latest 2,000 per sign")


@router.get("/{household_id}/series", response_model=SeriesOut)
async def get_series(
    household_id: VisibleHousehold,
    conn: ReadConn,
    context: Context,
    range_: Annotated[SeriesRange, Query(alias="range")] = "24h",
) -> SeriesOut:
    """Charts for the household page: every bucket of the range, gaps as null."""
    span, bucket_s = RANGES[range_]
    window = Window.ending_at(context.clock.now(), span, bucket_s)
    found = await household_series(conn, household_id, window)
    return SeriesOut(
        range=range_,
        start=window.start,
        end=window.end,
        bucket_s=bucket_s,
        water_l=found.water_l,
        energy_kwh=found.energy_kwh,
        power_w=found.power_w,
        vitals=VitalsOut(**found.vitals),
    )
