"""The readings every process stores, read back in the order they were stored, for the
detector that owns their households (DESIGN.md §9).

Ids are handed out when a row is inserted but become visible when its transaction commits, so
on PostgreSQL, with several processes storing at once, a reading with a lower id can appear
after one with a higher id. An id skipped over is a gap: it is looked for again on every read
until it appears or `GAP_WAIT` passes (a transaction rolled back, or an insert that met a row
already stored, uses up an id for good). `taken_to` is the id up to which every reading has
been handed out: the point a detector's saved state is valid from.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.readings import (
    ReadBack,
    StoredReading,
    readings_after,
    readings_by_id,
)

GAP_WAIT_S = 30.0
"""Longer than any ingest transaction takes: a reading committed later than this after a
reading with a higher id is stored, but the rules over time do not hear of it."""
READ_LIMIT = 5_000
MAX_GAPS = 50_000


class ReadingsFeed:
    def __init__(
        self, db: AsyncEngine, after: int, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.db = db
        self.read_to = after
        """The highest id read."""
        self._gaps: dict[int, float] = {}
        """Ids below `read_to` not seen yet -> when first missed."""
        self._monotonic = monotonic

    @property
    def taken_to(self) -> int:
        """Every reading with an id up to here has been read (or given up on)."""
        return min(self._gaps) - 1 if self._gaps else self.read_to

    @property
    def gaps(self) -> int:
        return len(self._gaps)

    async def read(
        self, limit: int = READ_LIMIT, *, keep: Callable[[str], bool] | None = None
    ) -> ReadBack:
        """The readings stored since the last read (and gaps filled since), in id order; with
        `keep`, only those of the households it keeps (the others' ids are still accounted
        for)."""
        async with self.db.connect() as conn:
            late = await readings_by_id(conn, list(self._gaps), keep=keep) if self._gaps else None
            new = await readings_after(conn, self.read_to, limit, keep=keep)
        now = self._monotonic()
        if late is not None:
            for i in late.ids:
                del self._gaps[i]
        expected = self.read_to + 1
        for i in new.ids:
            for missing in range(expected, i):
                self._gaps[missing] = now
            expected = i + 1
        if new.ids:
            self.read_to = new.ids[-1]
        self._forget_old_gaps(now)
        if late is None:
            return new
        return ReadBack(late.ids + new.ids, late.readings + new.readings)

    async def between(
        self, after: int, up_to: int, *, keep: Callable[[str], bool] | None = None
    ) -> list[StoredReading]:
        """Readings with ids in (after, up_to], in id order: a partition taken over catching
        up with what the feed has already read past."""
        out: list[StoredReading] = []
        async with self.db.connect() as conn:
            while after < up_to:
                chunk = await readings_after(conn, after, READ_LIMIT, up_to=up_to, keep=keep)
                if not chunk.ids:
                    break
                out += chunk.readings
                after = chunk.ids[-1]
        return out

    def _forget_old_gaps(self, now: float) -> None:
        old = [i for i, since in self._gaps.items() if now - since > GAP_WAIT_S]
        for i in old:
            del self._gaps[i]
        if len(self._gaps) > MAX_GAPS:  # a burst of duplicates: the oldest go first
            for i in sorted(self._gaps)[: len(self._gaps) - MAX_GAPS]:
                del self._gaps[i]
