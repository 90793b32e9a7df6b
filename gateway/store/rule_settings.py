"""Stored per-household rule settings, away periods and the rules' saved state."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.chunks import HouseholdRange
from gateway.store.dialect import upsert
from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import away_periods, household_rules, rule_state


@dataclass(frozen=True, slots=True)
class RuleOverrides:
    household_id: str
    overrides: dict[str, Any]
    updated_at: datetime
    updated_by: str


async def get_overrides(conn: AsyncConnection, household_id: str) -> RuleOverrides | None:
    row = (
        await conn.execute(
            sa.select(household_rules).where(household_rules.c.household_id == household_id)
        )
    ).first()
    if row is None:
        return None
    m = row._mapping
    return RuleOverrides(m["household_id"], dict(m["overrides"]), m["updated_at"], m["updated_by"])


async def all_overrides(conn: AsyncConnection) -> dict[str, dict[str, Any]]:
    rows = await conn.execute(
        sa.select(household_rules.c.household_id, household_rules.c.overrides)
    )
    return {h: dict(o) for h, o in rows.all()}


async def put_overrides(
    conn: AsyncConnection, household_id: str, overrides: dict[str, Any], by: str, now: datetime
) -> None:
    """Replace the household's overrides (an empty object removes them)."""
    if not overrides:
        await conn.execute(
            sa.delete(household_rules).where(household_rules.c.household_id == household_id)
        )
        return
    stmt = upsert(conn, household_rules).values(
        household_id=household_id, overrides=overrides, updated_at=now, updated_by=by
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["household_id"],
            set_={"overrides": overrides, "updated_at": now, "updated_by": by},
        )
    )


@dataclass(frozen=True, slots=True)
class AwayRecord:
    id: int
    household_id: str
    starts_at: datetime
    ends_at: datetime
    note: str
    created_at: datetime
    created_by: str


def _away(row: sa.Row[Any]) -> AwayRecord:
    m = row._mapping
    return AwayRecord(
        m["id"],
        m["household_id"],
        m["starts_at"],
        m["ends_at"],
        m["note"],
        m["created_at"],
        m["created_by"],
    )


async def add_away(
    conn: AsyncConnection,
    household_id: str,
    starts_at: datetime,
    ends_at: datetime,
    *,
    note: str,
    by: str,
    now: datetime,
) -> AwayRecord:
    result = await conn.execute(
        sa.insert(away_periods)
        .values(
            household_id=household_id,
            starts_at=starts_at,
            ends_at=ends_at,
            note=note,
            created_at=now,
            created_by=by,
        )
        .returning(*away_periods.c)
    )
    return _away(result.one())


def _away_of(household_id: str, ending_after: datetime | None) -> sa.Select[Any]:
    query = sa.select(away_periods).where(away_periods.c.household_id == household_id)
    if ending_after is not None:
        query = query.where(away_periods.c.ends_at > ending_after)
    return query.order_by(away_periods.c.starts_at, away_periods.c.id)


async def household_away(
    conn: AsyncConnection, household_id: str, *, ending_after: datetime | None = None
) -> list[AwayRecord]:
    """All of a household's away periods ending after `ending_after`, earliest first."""
    return [_away(r) for r in await conn.execute(_away_of(household_id, ending_after))]


async def list_away(
    conn: AsyncConnection, household_id: str, window: Window, *, ending_after: datetime | None
) -> Page[AwayRecord]:
    """A window of what `household_away` gives, with its total."""
    return await fetch_page(conn, _away_of(household_id, ending_after), window, _away)


async def all_away(conn: AsyncConnection, *, ending_after: datetime) -> dict[str, list[AwayRecord]]:
    rows = await conn.execute(
        sa.select(away_periods)
        .where(away_periods.c.ends_at > ending_after)
        .order_by(away_periods.c.starts_at)
    )
    out: dict[str, list[AwayRecord]] = defaultdict(list)
    for row in rows:
        record = _away(row)
        out[record.household_id].append(record)
    return dict(out)


async def get_away(conn: AsyncConnection, away_id: int) -> AwayRecord | None:
    row = (await conn.execute(sa.select(away_periods).where(away_periods.c.id == away_id))).first()
    return _away(row) if row is not None else None


async def end_away(conn: AsyncConnection, away_id: int, at: datetime) -> None:
    """End an away period at `at` (the elder came back early, or it was entered by mistake)."""
    await conn.execute(
        sa.update(away_periods).where(away_periods.c.id == away_id).values(ends_at=at)
    )


async def delete_away(conn: AsyncConnection, away_id: int) -> None:
    await conn.execute(sa.delete(away_periods).where(away_periods.c.id == away_id))


SAVE_CHUNK = 1000
"""Households written per statement when the rules' state is saved (see `save_rule_state`)."""


async def save_rule_state(
    conn: AsyncConnection, states: Iterable[tuple[str, dict[str, Any]]], now: datetime
) -> int:
    """Upsert the rules' saved state of these households; returns how many were written.

    `states` is consumed `SAVE_CHUNK` at a time, one statement each, so a generator of them is
    made a chunk at a time too. Every household changes between two saves of a busy gateway;
    all their documents built at once, with their rows and JSON text, raised the process's
    peak 150 MB at 25,000 homes, and the allocator kept 20-30 MB of it."""
    saved = 0
    pending = iter(states)
    while chunk := list(islice(pending, SAVE_CHUNK)):
        saved += await _upsert_states(conn, chunk, now)
    return saved


async def _upsert_states(
    conn: AsyncConnection, states: list[tuple[str, dict[str, Any]]], now: datetime
) -> int:
    rows = [{"household_id": h, "state": s, "updated_at": now} for h, s in states]
    stmt = upsert(conn, rule_state)
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["household_id"],
            set_={"state": stmt.excluded.state, "updated_at": stmt.excluded.updated_at},
        ),
        rows,
    )
    return len(rows)


async def load_rule_state(
    conn: AsyncConnection, household_id: str | None = None, *, within: HouseholdRange | None = None
) -> dict[str, dict[str, Any]]:
    """The rules' saved state per household (of one household, of a range, or of all)."""
    query = sa.select(rule_state.c.household_id, rule_state.c.state)
    if household_id is not None:
        query = query.where(rule_state.c.household_id == household_id)
    if within is not None:
        query = query.where(within.where(rule_state.c.household_id))
    rows = await conn.execute(query)
    return {h: dict(s) for h, s in rows.all() if isinstance(s, dict)}
