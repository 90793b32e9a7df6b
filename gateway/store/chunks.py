"""Households in ranges of their ids, for loads too large to read in one piece.

The start-up load of a county's devices, latest values and saved rule state read whole held
every row and every decoded JSON document at once, hundreds of megabytes at 100,000 homes; the
memory stayed with the process after the load (the allocator's pools, fragmented by what the
rules keep). Read a range of households at a time instead, and each range's rows are gone
before the next is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import households

LOAD_CHUNK = 1000
"""Households per range: a few hundred kilobytes of rows, and a query per table per range."""


@dataclass(frozen=True, slots=True)
class HouseholdRange:
    """The household ids from `start` (inclusive) to `end` (exclusive) in the database's own
    order; None leaves that side open."""

    start: str | None = None
    end: str | None = None

    def where(self, column: sa.ColumnElement[str]) -> sa.ColumnElement[bool]:
        """The condition that `column` (a household id) lies in this range."""
        bounds = []
        if self.start is not None:
            bounds.append(column >= self.start)
        if self.end is not None:
            bounds.append(column < self.end)
        return sa.and_(sa.true(), *bounds)


async def household_ranges(conn: AsyncConnection, size: int = LOAD_CHUNK) -> list[HouseholdRange]:
    """Ranges of about `size` households each that together cover every possible id.

    The bounds come from the database's ordering of the ids (a PostgreSQL collation may order
    them unlike Python), and the first and last ranges are open: a row whose household is not
    (or no longer) in the households table is still in exactly one range.
    """
    ids = (await conn.scalars(sa.select(households.c.id).order_by(households.c.id))).all()
    bounds: list[str | None] = [None, *ids[size::size], None]
    return [HouseholdRange(start, end) for start, end in pairwise(bounds)]
