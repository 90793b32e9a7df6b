"""The monthly visit rate: every elder in the programme visited at least once a month.

An elder is covered in a month when at least one visit record of any method (a home visit, a
call, a video call, remote monitoring) falls in it, months taken in the gateway's zone. Visits
the gateway filed by itself for an alert that cleared on its own (a device back online) are not
contacts: nobody spoke to or saw the elder, so they do not count. Pure: rows in, report out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from gateway.reports.response import NO_VILLAGE, Month

Level = Literal["county", "township", "village"]
LEVELS: tuple[Level, ...] = ("county", "township", "village")


@dataclass(frozen=True, slots=True)
class Elder:
    """An elder on the ledger, as coverage needs them."""

    household_id: str
    name: str
    county: str
    township: str
    village: str
    joined_on: date
    """In the programme from (registered_on, else the day the record was created)."""
    left_on: date | None
    visitors: tuple[str, ...] = ()
    """Their visitors' names, in order (no phone numbers: they go into lists)."""


@dataclass(frozen=True, slots=True)
class Contact:
    """A visit record as coverage sees it: whose, when, and whether it counts."""

    household_id: str
    visited_at: datetime
    automatic: bool


@dataclass(frozen=True, slots=True)
class AreaCoverage:
    county: str | None
    township: str | None
    village: str | None
    """Names above the report's level; None below it (and all None on the total row)."""
    elders: int
    visited: int
    rate: float | None
    """visited / elders; None: no elders."""
    percent: float | None
    """The rate as a percentage rounded to one decimal."""


@dataclass(frozen=True, slots=True)
class Unvisited:
    household_id: str
    elder_name: str
    county: str
    township: str
    village: str
    visitors: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CoverageReport:
    month: str
    zone: str
    level: Level
    start: datetime
    end: datetime
    areas: list[AreaCoverage]
    total: AreaCoverage
    not_visited: list[Unvisited]


def month_of(when: datetime, zone: ZoneInfo) -> Month:
    """The month `when` falls in, in `zone`."""
    local = when.astimezone(zone)
    return Month(local.year, local.month)


def month_days(month: Month) -> tuple[date, date]:
    """The month's first and last days."""
    first = date(month.year, month.month, 1)
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def local_date(when: datetime, zone: ZoneInfo) -> date:
    """The calendar day `when` falls on in `zone`."""
    return when.astimezone(zone).date()


def is_automatic(details: Mapping[str, Any] | None) -> bool:
    """Whether a visit was filed by the gateway for an alert it resolved by itself."""
    return details is not None and details.get("automatic") is True


def in_programme(elder: Elder, first: date, last: date) -> bool:
    """Whether the elder was in the programme on some day from `first` to `last`."""
    return elder.joined_on <= last and (elder.left_on is None or elder.left_on >= first)


def visited_households(
    contacts: Iterable[Contact],
    start: datetime,
    end: datetime,
    *,
    since: Mapping[str, datetime] | None = None,
) -> set[str]:
    """Households with a counting visit in [start, end) (and, per household, at or after
    `since[household]` when given)."""
    since = since or {}
    found = set()
    for contact in contacts:
        if contact.automatic or not start <= contact.visited_at < end:
            continue
        after = since.get(contact.household_id)
        if after is None or contact.visited_at >= after:
            found.add(contact.household_id)
    return found


def _rate(visited: int, elders: int) -> tuple[float | None, float | None]:
    if not elders:
        return None, None
    rate = visited / elders
    return rate, round(rate * 100, 1)


def _area_key(elder: Elder, level: Level) -> tuple[str, ...]:
    # Homes with no village on file are a group of their own, named as in the response report.
    names = (elder.county, elder.township, elder.village or NO_VILLAGE)
    return names[: LEVELS.index(level) + 1]


def _area(key: tuple[str, ...], elders: int, visited: int) -> AreaCoverage:
    padded: list[str | None] = [*key, None, None, None]
    rate, percent = _rate(visited, elders)
    return AreaCoverage(padded[0], padded[1], padded[2], elders, visited, rate, percent)


def coverage_for_month(
    month: Month,
    zone: ZoneInfo,
    elders: Sequence[Elder],
    contacts: Iterable[Contact],
    level: Level = "village",
) -> CoverageReport:
    """Per area at `level`: the elders in the programme during the month, how many had a
    counting visit in it, the rate; the total; and the elders not yet visited."""
    start, end = month.bounds(zone)
    first, last = month_days(month)
    counted = [e for e in elders if in_programme(e, first, last)]
    visited = visited_households(contacts, start, end)
    tally: dict[tuple[str, ...], list[int]] = {}
    for elder in counted:
        seen = tally.setdefault(_area_key(elder, level), [0, 0])
        seen[0] += 1
        seen[1] += elder.household_id in visited
    total_visited = sum(1 for e in counted if e.household_id in visited)
    not_visited = sorted(
        (e for e in counted if e.household_id not in visited),
        key=lambda e: (e.county, e.township, e.village, e.name, e.household_id),
    )
    return CoverageReport(
        month=str(month),
        zone=zone.key,
        level=level,
        start=start.astimezone(UTC),
        end=end.astimezone(UTC),
        areas=[_area(key, n, v) for key, (n, v) in sorted(tally.items())],
        total=_area((), len(counted), total_visited),
        not_visited=[
            Unvisited(e.household_id, e.name, e.county, e.township, e.village, e.visitors)
            for e in not_visited
        ],
    )
