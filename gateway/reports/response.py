"""How fast alerts were acknowledged in a month, as alarm receiving centres report it.

Their target for call handling: 97.5 % of alarm calls answered within 60 s and 99 % within
180 s. Here the clock runs from the start of an alert's escalation to its acknowledgement; an
alert acknowledged before its escalation started (a low-severity alert held overnight that
someone saw on the dashboard) took no time. Pure: the rows come in, the report goes out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar
from zoneinfo import ZoneInfo

from gateway.alerts.book import SYSTEM_ACTOR
from gateway.models import AlertStatus, Severity
from gateway.store.response_times import AlertTiming

BANDS_MIN = (1, 3, 5, 15)
"""Minutes within which acknowledgements are counted."""
NO_VILLAGE = "(no village)"
"""The name of the group of households with no village on file."""
FIRST_YEAR, LAST_YEAR = 1970, 9998

_MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
_SEVERITY_ORDER = {s.value: i for i, s in enumerate(Severity)}
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True, slots=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """YYYY-MM with a real month, in the years a report can be for."""
        found = _MONTH.fullmatch(text)
        if found is None:
            raise ValueError("a month is YYYY-MM, e.g. 2026-11")
        year, month = int(found[1]), int(found[2])
        if not FIRST_YEAR <= year <= LAST_YEAR:
            raise ValueError(f"a year from {FIRST_YEAR} to {LAST_YEAR}")
        return cls(year, month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def bounds(self, zone: ZoneInfo) -> tuple[datetime, datetime]:
        """The month's first instant and the next month's, in `zone`, as UTC."""
        following = (
            Month(self.year + 1, 1) if self.month == 12 else Month(self.year, self.month + 1)
        )
        start = datetime(self.year, self.month, 1, tzinfo=zone)
        end = datetime(following.year, following.month, 1, tzinfo=zone)
        return start.astimezone(UTC), end.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class Band:
    minutes: int
    acknowledged: int
    share: float | None
    """Of all the group's alerts (never-acknowledged ones count as not within); None: none."""


@dataclass(frozen=True, slots=True)
class Times:
    """Acknowledgement times of a group of alerts."""

    alerts: int
    acknowledged: int
    within: list[Band]
    median_s: float | None
    """Of the acknowledged alerts, by nearest rank (an observed time); None: none acknowledged."""
    p90_s: float | None


@dataclass(frozen=True, slots=True)
class SeverityTimes:
    severity: str
    times: Times


@dataclass(frozen=True, slots=True)
class VillageTimes:
    county: str
    township: str
    village: str
    times: Times


@dataclass(frozen=True, slots=True)
class Target:
    within_s: int
    share: float
    """The share the standard asks for."""
    achieved: float | None
    met: bool | None
    """None when there were no alerts to judge."""


@dataclass(frozen=True, slots=True)
class Unacknowledged:
    id: int
    rule: str
    severity: str
    household_id: str
    village: str
    started_at: datetime
    status: str
    flagged: bool
    resolved_by: str | None
    auto_resolved: bool
    """Resolved by the gateway (the condition cleared) before anyone acknowledged it."""


@dataclass(frozen=True, slots=True)
class ResponseReport:
    month: str
    zone: str
    start: datetime
    end: datetime
    overall: Times
    standard: list[Target]
    standard_met: bool | None
    by_severity: list[SeverityTimes]
    by_village: list[VillageTimes]
    unacknowledged: list[Unacknowledged]


STANDARD = ((60, 0.975), (180, 0.99))
"""(seconds, share): the alarm receiving centres' answer-time targets."""


def seconds_to_acknowledge(alert: AlertTiming) -> float | None:
    """From the escalation's start to the acknowledgement, never below zero; None: never."""
    if alert.acknowledged_at is None:
        return None
    return max(0.0, (alert.acknowledged_at - alert.started_at).total_seconds())


def _nearest_rank(ordered: Sequence[float], p: float) -> float | None:
    if not ordered:
        return None
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def times(durations: Sequence[float | None]) -> Times:
    """Counts, shares within each band, median and 90th percentile of some alerts' times."""
    acked = sorted(d for d in durations if d is not None)
    total = len(durations)
    bands = []
    for minutes in BANDS_MIN:
        count = sum(1 for d in acked if d <= minutes * 60)
        bands.append(Band(minutes, count, _share(count, total)))
    return Times(
        alerts=total,
        acknowledged=len(acked),
        within=bands,
        median_s=_nearest_rank(acked, 0.5),
        p90_s=_nearest_rank(acked, 0.9),
    )


def _grouped(
    alerts: Iterable[AlertTiming], key: Callable[[AlertTiming], K]
) -> dict[K, list[float | None]]:
    groups: dict[K, list[float | None]] = {}
    for alert in alerts:
        groups.setdefault(key(alert), []).append(seconds_to_acknowledge(alert))
    return groups


def _targets(durations: Sequence[float | None]) -> list[Target]:
    targets = []
    for within_s, share in STANDARD:
        count = sum(1 for d in durations if d is not None and d <= within_s)
        achieved = _share(count, len(durations))
        met = None if achieved is None else achieved >= share
        targets.append(Target(within_s, share, achieved, met))
    return targets


def response_report(month: Month, zone: ZoneInfo, alerts: Sequence[AlertTiming]) -> ResponseReport:
    """The month's report from the alerts whose escalation started in it."""
    start, end = month.bounds(zone)
    durations = [seconds_to_acknowledge(a) for a in alerts]
    targets = _targets(durations)
    by_severity = _grouped(alerts, lambda a: a.severity)
    by_village = _grouped(alerts, lambda a: (a.county, a.township, a.village))
    return ResponseReport(
        month=str(month),
        zone=zone.key,
        start=start,
        end=end,
        overall=times(durations),
        standard=targets,
        standard_met=None if not alerts else all(t.met for t in targets),
        by_severity=[
            SeverityTimes(severity, times(group))
            for severity, group in sorted(
                by_severity.items(), key=lambda kv: (_SEVERITY_ORDER.get(kv[0], 99), kv[0])
            )
        ],
        by_village=[
            VillageTimes(county, township, village or NO_VILLAGE, times(group))
            for (county, township, village), group in sorted(by_village.items())
        ],
        unacknowledged=[
            Unacknowledged(
                id=a.id,
                rule=a.rule_id,
                severity=a.severity,
                household_id=a.household_id,
                village=a.village or NO_VILLAGE,
                started_at=a.started_at,
                status=a.status,
                flagged=a.flagged,
                resolved_by=a.resolved_by,
                auto_resolved=a.status == AlertStatus.RESOLVED and a.resolved_by == SYSTEM_ACTOR,
            )
            for a in alerts
            if a.acknowledged_at is None
        ],
    )
