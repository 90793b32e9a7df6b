"""The control room's overview: each household's status from its active alerts, in a few
grouped queries (never one per household), counted and ordered by the database."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.models import Severity
from gateway.store.alerts import SEVERITY_ORDER, severity_rank
from gateway.store.tables import alerts, devices, escalations, households, notifications


class HouseholdStatus(StrEnum):
    """What the overview shows of a household, the first that applies in this order."""

    ALERT = "alert"
    CHECKIN = "checkin"
    OFFLINE = "offline"
    LOW_BATTERY = "low_battery"
    WELL = "well"


STATUS_ORDER: tuple[HouseholdStatus, ...] = tuple(HouseholdStatus)
OFFLINE_RULE = "device_offline"
LOW_BATTERY_RULE = "low_battery"
CHECKIN_PURPOSE = "checkin"
"""notifications.purpose of a check-in call to the elder (gateway.alerts.outbox.Purpose)."""
RUNNING = "running"
"""escalations.state while steps go on (gateway.alerts.escalation)."""

_TILE_COLUMNS = (
    households.c.id,
    households.c.elder_name,
    households.c.township,
    households.c.village,
    households.c.risk,
)
# Written as a literal, not a bound parameter, so that SQLite and PostgreSQL use the partial
# index uq_alerts_active (WHERE status != 'resolved'): a county keeps every resolved alert.
_ACTIVE = alerts.c.status != sa.literal_column("'resolved'")


def _in_checkin() -> sa.ColumnElement[bool]:
    """The alert waits on a check-in call to the elder: its escalation is running and the
    last step it ran was the call (or, none run yet, the call comes first)."""
    last_step_was_call = sa.exists().where(
        notifications.c.alert_id == alerts.c.id,
        notifications.c.run == escalations.c.runs,
        notifications.c.purpose == CHECKIN_PURPOSE,
    )
    call_comes_first = sa.and_(
        escalations.c.runs == 0,
        escalations.c.policy[("steps", 0, "checkin")].as_boolean().is_(True),
    )
    return sa.and_(escalations.c.state == RUNNING, sa.or_(last_step_was_call, call_comes_first))


def _alert_kinds() -> sa.Subquery:
    """Per household with active alerts: how many of each kind, the worst severity, and since
    when the oldest alert (other than offline, battery and check-in) is open."""
    kind = sa.case(
        (alerts.c.rule_id == OFFLINE_RULE, "offline"),
        (alerts.c.rule_id == LOW_BATTERY_RULE, "battery"),
        (_in_checkin(), "checkin"),
        else_="alert",
    )
    # Grouped by kind first: each alert's kind (a look-up in notifications) is worked out
    # once; referred to by each count below, SQLite would repeat it for every reference.
    per_kind = (
        sa.select(
            alerts.c.household_id,
            kind.label("kind"),
            sa.func.count().label("n"),
            sa.func.min(severity_rank(alerts.c.severity)).label("rank"),
            sa.func.min(alerts.c.opened_at).label("oldest"),
        )
        .select_from(alerts.outerjoin(escalations, escalations.c.alert_id == alerts.c.id))
        .where(_ACTIVE)
        .group_by(alerts.c.household_id, kind)
        .subquery("per_kind")
    )

    def count(of: str) -> sa.Label[Any]:
        return sa.func.sum(sa.case((per_kind.c.kind == of, per_kind.c.n), else_=0)).label(f"n_{of}")

    return (
        sa.select(
            per_kind.c.household_id,
            count("alert"),
            count("checkin"),
            count("offline"),
            count("battery"),
            sa.func.sum(per_kind.c.n).label("n_active"),
            sa.func.min(per_kind.c.rank).label("worst"),
            sa.func.min(sa.case((per_kind.c.kind == "alert", per_kind.c.oldest))).label(
                "oldest_alert"
            ),
        )
        .group_by(per_kind.c.household_id)
        .subquery("kinds")
    )


@dataclass(frozen=True, slots=True)
class OverviewFilter:
    """What the overview asks for, on top of the caller's scope."""

    township: str | None = None
    village: str | None = None
    q: str | None = None
    """The elder's name contains it, or the household id begins with it."""
    status: HouseholdStatus | None = None

    def area_clause(self) -> sa.ColumnElement[bool]:
        parts: list[sa.ColumnElement[bool]] = []
        if self.township is not None:
            parts.append(households.c.township == self.township)
        if self.village is not None:
            parts.append(households.c.village == self.village)
        if self.q:
            parts.append(
                sa.or_(
                    households.c.elder_name.contains(self.q, autoescape=True),
                    households.c.id.startswith(self.q, autoescape=True),
                )
            )
        return sa.and_(sa.true(), *parts)


@dataclass(frozen=True, slots=True)
class HouseholdTile:
    """One household's line in the overview."""

    id: str
    elder_name: str
    township: str
    village: str
    status: HouseholdStatus
    worst_severity: Severity | None
    active_alerts: int
    devices: int
    devices_offline: int
    devices_low_battery: int
    last_seen: datetime | None
    risk: str


@dataclass(frozen=True, slots=True)
class Area:
    township: str
    village: str
    households: int


@dataclass(frozen=True, slots=True)
class Overview:
    counts: dict[str, int]
    """Per status and "total", for the area filter (status ignored)."""
    areas: list[Area]
    total: int
    """The households matching every filter, status included."""
    households: list[HouseholdTile]


def _status(kinds: sa.Subquery) -> sa.ColumnElement[str]:
    return sa.case(
        (kinds.c.n_alert > 0, HouseholdStatus.ALERT.value),
        (kinds.c.n_checkin > 0, HouseholdStatus.CHECKIN.value),
        (kinds.c.n_offline > 0, HouseholdStatus.OFFLINE.value),
        (kinds.c.n_battery > 0, HouseholdStatus.LOW_BATTERY.value),
        else_=HouseholdStatus.WELL.value,
    )


async def overview(
    conn: AsyncConnection,
    scope: sa.ColumnElement[bool],
    wanted: OverviewFilter,
    *,
    today: date,
    limit: int,
    offset: int,
) -> Overview:
    """The households within `scope` (a clause on the households table) still in the
    programme on `today`: counts per status, the areas, and one page in the control room's
    order."""
    in_programme = sa.and_(
        scope, sa.or_(households.c.left_on.is_(None), households.c.left_on > today)
    )
    where = sa.and_(in_programme, wanted.area_clause())
    kinds = _alert_kinds()
    counts = await _counts(conn, kinds, where)
    page = await _page(conn, kinds, where, wanted.status, counts, limit, offset)
    fitted = await _devices_of(conn, [r.id for r in page])
    return Overview(
        counts=counts,
        areas=await _areas(conn, in_programme),
        total=counts["total"] if wanted.status is None else counts[wanted.status.value],
        households=[_tile(r, *fitted.get(r.id, (0, None))) for r in page],
    )


async def _counts(
    conn: AsyncConnection, kinds: sa.Subquery, where: sa.ColumnElement[bool]
) -> dict[str, int]:
    """Households per status and in all. Most are well: those with alerts are counted from
    the few active alerts, the well ones are the rest."""
    everyone = await conn.scalar(sa.select(sa.func.count()).select_from(households).where(where))
    status = _status(kinds)
    by_status = await conn.execute(
        sa.select(status, sa.func.count())
        .select_from(households.join(kinds, kinds.c.household_id == households.c.id))
        .where(where)
        .group_by(status)
    )
    counts = {s.value: 0 for s in STATUS_ORDER}
    counts.update({str(s): int(n) for s, n in by_status})
    counts["total"] = int(everyone or 0)
    counts[HouseholdStatus.WELL.value] = counts["total"] - sum(
        counts[s.value] for s in STATUS_ORDER if s is not HouseholdStatus.WELL
    )
    return counts


async def _areas(conn: AsyncConnection, in_programme: sa.ColumnElement[bool]) -> list[Area]:
    rows = await conn.execute(
        sa.select(households.c.township, households.c.village, sa.func.count())
        .where(in_programme)
        .group_by(households.c.township, households.c.village)
    )
    # Sorted here: the databases' collations of Chinese names differ.
    return sorted((Area(t, v, int(n)) for t, v, n in rows), key=lambda a: (a.township, a.village))


async def _page(
    conn: AsyncConnection,
    kinds: sa.Subquery,
    where: sa.ColumnElement[bool],
    wanted: HouseholdStatus | None,
    counts: dict[str, int],
    limit: int,
    offset: int,
) -> list[sa.Row[Any]]:
    """One page in order: households with alerts (ordered by the database from the few
    active alerts), then the well ones by id, so no page sorts the whole scope."""
    well = HouseholdStatus.WELL
    if wanted is well:
        return list((await conn.execute(_well_rows(where).limit(limit).offset(offset))).all())
    unwell = _unwell_rows(kinds, where)
    if wanted is not None:
        chosen = unwell.where(_status(kinds) == wanted.value).limit(limit).offset(offset)
        return list((await conn.execute(chosen)).all())
    before_well = counts["total"] - counts[well.value]
    page: list[sa.Row[Any]] = []
    if offset < before_well:
        page += (await conn.execute(unwell.limit(limit).offset(offset))).all()
    if len(page) < limit:
        rest = _well_rows(where).limit(limit - len(page)).offset(max(offset - before_well, 0))
        page += (await conn.execute(rest)).all()
    return page


def _unwell_rows(kinds: sa.Subquery, where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Households with active alerts: alert (worst severity, then oldest alert first),
    check-in, offline, low battery; then by id."""
    status = _status(kinds)
    status_rank = sa.case(
        {s.value: k for k, s in enumerate(STATUS_ORDER)}, value=status, else_=len(STATUS_ORDER)
    )
    is_alert = kinds.c.n_alert > 0
    return (
        sa.select(
            *_TILE_COLUMNS,
            status.label("status"),
            kinds.c.n_active,
            kinds.c.worst,
            kinds.c.n_offline,
            kinds.c.n_battery,
        )
        .select_from(households.join(kinds, kinds.c.household_id == households.c.id))
        .where(where)
        .order_by(
            status_rank,
            sa.case((is_alert, kinds.c.worst), else_=0),
            sa.case((is_alert, kinds.c.oldest_alert)),
            households.c.id,
        )
    )


def _well_rows(where: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """Households without an active alert, by id (the primary key's order)."""
    return (
        sa.select(
            *_TILE_COLUMNS,
            sa.literal(HouseholdStatus.WELL.value).label("status"),
            sa.literal(0).label("n_active"),
            sa.null().label("worst"),
            sa.literal(0).label("n_offline"),
            sa.literal(0).label("n_battery"),
        )
        .where(where, households.c.id.not_in(sa.select(alerts.c.household_id).where(_ACTIVE)))
        .order_by(households.c.id)
    )


def _tile(row: sa.Row[Any], devices_fitted: int, last_seen: datetime | None) -> HouseholdTile:
    known = row.worst is not None and row.worst < len(SEVERITY_ORDER)
    return HouseholdTile(
        id=row.id,
        elder_name=row.elder_name,
        township=row.township,
        village=row.village,
        status=HouseholdStatus(row.status),
        worst_severity=SEVERITY_ORDER[row.worst] if known else None,
        active_alerts=int(row.n_active),
        devices=devices_fitted,
        devices_offline=int(row.n_offline),
        devices_low_battery=int(row.n_battery),
        last_seen=last_seen,
        risk=row.risk,
    )


async def _devices_of(
    conn: AsyncConnection, household_ids: Sequence[str]
) -> dict[str, tuple[int, datetime | None]]:
    """Per household of the page: devices fitted and the latest time any was seen."""
    if not household_ids:
        return {}
    rows = await conn.execute(
        sa.select(devices.c.household_id, sa.func.count(), sa.func.max(devices.c.last_seen))
        .where(devices.c.household_id.in_(household_ids))
        .group_by(devices.c.household_id)
    )
    return {h: (int(n), seen) for h, n, seen in rows}
