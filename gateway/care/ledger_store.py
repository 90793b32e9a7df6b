"""A checked ledger into the registry in one transaction, and the registry out as a ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.care import audit
from gateway.care.audit import Actor
from gateway.care.households import (
    Household,
    contact_rows,
    get_households,
    registry_columns,
)
from gateway.care.ledger import (
    Ledger,
    LedgerRow,
    RowError,
    SheetKind,
    new_household_id,
    parse_ledger,
    read_sheet,
)
from gateway.care.registry import changed_fields, registry_view
from gateway.privacy import mask_citizen_id, mask_phone
from gateway.store.tables import contacts, households

T = TypeVar("T")
CHUNK = 500
"""Ids per IN (...): SQLite and asyncpg both limit a statement's parameters."""


def _chunks(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


@dataclass(frozen=True, slots=True)
class Placed:
    """A row with the household it becomes: `existing` when it replaces a registered one."""

    row: LedgerRow
    household_id: str
    existing: bool


@dataclass(frozen=True, slots=True)
class _Registered:
    id: str
    township: str
    citizen_id: str | None


async def _registered(
    conn: AsyncConnection, column: sa.ColumnElement[Any], values: Sequence[str]
) -> list[_Registered]:
    found = []
    for chunk in _chunks(sorted(set(values))):
        rows = await conn.execute(
            sa.select(households.c.id, households.c.township, households.c.citizen_id).where(
                column.in_(chunk)
            )
        )
        found += [_Registered(r.id, r.township, r.citizen_id) for r in rows]
    return found


async def place_rows(
    conn: AsyncConnection, ledger: Ledger, township: str | None
) -> tuple[list[Placed], list[RowError]]:
    """Which household each row becomes, and the rows that may not be imported: outside the
    operator's `township` (None: an admin, anywhere), or an ID number registered to another."""
    by_id = {r.id: r for r in await _registered(conn, households.c.id, _ids(ledger.rows))}
    citizen_ids = [
        r.household.elder.citizen_id for r in ledger.rows if r.household.elder.citizen_id
    ]
    by_citizen = {
        r.citizen_id: r for r in await _registered(conn, households.c.citizen_id, citizen_ids)
    }
    placed, errors = [], []
    for row in ledger.rows:
        citizen_id = row.household.elder.citizen_id
        holder = by_citizen.get(citizen_id) if citizen_id else None
        household_id = row.id or (holder.id if holder else new_household_id())
        current = by_id.get(household_id) or (holder if holder and not row.id else None)
        if township is not None:
            areas = {row.household.address.township} | ({current.township} if current else set())
            if areas != {township}:
                errors.append(
                    RowError(row.row, ledger.header("address.township"), "not your township")
                )
                continue
        if holder is not None and holder.id != household_id:
            errors.append(
                RowError(
                    row.row,
                    ledger.header("elder.citizen_id"),
                    "this ID number is registered to another household",
                )
            )
            continue
        placed.append(Placed(row, household_id, current is not None))
    return placed, errors


def _ids(rows: Sequence[LedgerRow]) -> list[str]:
    return [r.id for r in rows if r.id is not None]


async def import_rows(
    conn: AsyncConnection, placed: Sequence[Placed], actor: Actor, now: datetime
) -> tuple[int, int]:
    """Create and replace the households (the caller's transaction: all or nothing); every
    change audited. Returns (created, replaced).

    A few statements for the whole file, not a few per row: SQLite has one writer, and ingest
    waits while the import's transaction is open.
    """
    new = [p for p in placed if not p.existing]
    old = [p for p in placed if p.existing]
    before: dict[str, Household] = {}
    for chunk in _chunks([p.household_id for p in old]):
        before |= {h.id: h for h in await get_households(conn, list(chunk))}
    changes = [
        audit.Change(
            "household.update",
            p.household_id,
            details={
                "source": "ledger",
                "fields": changed_fields(
                    registry_view(before[p.household_id]),
                    p.row.household.model_dump(mode="json"),
                ),
            },
        )
        for p in old
    ] + [
        audit.Change("household.create", p.household_id, details={"source": "ledger"}) for p in new
    ]
    if new:
        await conn.execute(
            sa.insert(households),
            [
                {"id": p.household_id, "details": {}, "created_at": now}
                | registry_columns(p.row.household, now)
                for p in new
            ],
        )
    if old:
        await _replace_all(conn, old, now)
    for chunk in _chunks([p.household_id for p in old]):
        await conn.execute(sa.delete(contacts).where(contacts.c.household_id.in_(chunk)))
    people = [c for p in placed for c in contact_rows(p.household_id, p.row.household)]
    for part in _chunks(people):
        await conn.execute(sa.insert(contacts), list(part))
    await audit.record_many(conn, actor, changes, now=now)
    return len(new), len(old)


async def _replace_all(conn: AsyncConnection, old: Sequence[Placed], now: datetime) -> None:
    """One UPDATE executed for many rows (the bound names differ from the columns': SQLAlchemy
    keeps those for itself)."""
    rows = [
        {"key": p.household_id}
        | {f"new_{k}": v for k, v in registry_columns(p.row.household, now).items()}
        for p in old
    ]
    names = [k.removeprefix("new_") for k in rows[0] if k != "key"]
    await conn.execute(
        sa.update(households)
        .where(households.c.id == sa.bindparam("key"))
        .values({name: sa.bindparam(f"new_{name}") for name in names}),
        rows,
    )


def ledger_registry(h: Household, whole: bool) -> dict[str, Any]:
    """A household as a ledger row's registry (with its id); numbers masked unless `whole`."""
    view = {"id": h.id, **registry_view(h)}
    if whole:
        return view
    phone = _masked_phone
    view["elder"] |= {
        "phone": phone(view["elder"]["phone"]),
        "citizen_id": _masked_id(view["elder"]["citizen_id"]),
    }
    for role in ("visitors", "relatives"):
        view[role] = [c | {"phone": phone(c["phone"])} for c in view[role]]
    view["members"] = [m | {"citizen_id": _masked_id(m["citizen_id"])} for m in view["members"]]
    view["support"] |= {"responsible_phone": phone(view["support"]["responsible_phone"])}
    return view


def _masked_phone(value: str | None) -> str | None:
    return mask_phone(value) if value else value


def _masked_id(value: str | None) -> str | None:
    return mask_citizen_id(value) if value else value


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    created: int = 0
    replaced: int = 0
    errors: tuple[RowError, ...] = ()
    household_ids: tuple[str, ...] = ()
    """The households created or replaced (none on a dry run or when refused)."""
    to_reload: tuple[str, ...] = ()
    """Those the rules must reload: replaced ones, and new ones with a zone of their own (a
    new household in the gateway's zone is what the rules assume of one they do not know)."""


class _Refused(Exception):
    def __init__(self, errors: list[RowError]) -> None:
        self.errors = errors


async def import_ledger(
    db: AsyncEngine,
    data: bytes,
    kind: SheetKind,
    *,
    actor: Actor,
    township: str | None,
    now: datetime,
    today: date,
    dry_run: bool = False,
) -> ImportOutcome:
    """Check every row of a ledger file; import all of them in one transaction, or none and
    say why (LedgerUnreadable: not a spreadsheet at all). `township`: an operator's area."""
    # Reading and checking 10,000 rows takes a second or two: not on the event loop.
    ledger = await asyncio.to_thread(lambda: parse_ledger(read_sheet(data, kind), today))
    if ledger.errors:
        return ImportOutcome(errors=tuple(ledger.errors))
    try:
        async with db.begin() as conn:
            placed, errors = await place_rows(conn, ledger, township)
            if errors:
                raise _Refused(errors)
            if dry_run:
                new = sum(1 for p in placed if not p.existing)
                return ImportOutcome(new, len(placed) - new)
            created, replaced = await import_rows(conn, placed, actor, now)
            await audit.record(
                conn,
                actor,
                "ledger.import",
                now=now,
                details={"created": created, "updated": replaced, "rows": len(placed)},
            )
    except _Refused as refused:
        return ImportOutcome(errors=tuple(refused.errors))
    return ImportOutcome(
        created,
        replaced,
        household_ids=tuple(p.household_id for p in placed),
        to_reload=tuple(p.household_id for p in placed if p.existing or p.row.household.timezone),
    )
