"""Gathers the committed notes of this process and publishes them as events, a few at a time.

The capture hooks run inside database calls, on the hot path of ingest: they only merge the
notes here. A loop of its own reads the alerts' current rows and publishes the lot.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.live.events import AlertChanged, Changed, ChangeKind, LiveEvent, Resync, change_of
from gateway.live.waits import first_of
from gateway.store.changes import Notes
from gateway.store.tables import alerts

log = logging.getLogger(__name__)

NOTES_LIMIT = 20_000
"""Notes gathered and not yet published; past that (the loop is stuck) a resync goes out."""
CHUNK = 500
"""Alert ids read per query."""


def alert_changes(noted: Sequence[tuple[int, str]]) -> dict[int, list[ChangeKind]]:
    """Each alert's kinds of change in order, once each; a bare "updated" only when nothing
    more telling happened to it."""
    kinds: dict[int, list[ChangeKind]] = {}
    for alert_id, event in noted:
        seen = kinds.setdefault(alert_id, [])
        kind = change_of(event)
        if kind not in seen:
            seen.append(kind)
    for seen in kinds.values():
        if len(seen) > 1 and "updated" in seen:
            seen.remove("updated")
    return kinds


class ChangeCollector:
    """The sink of `CommitCapture`; `run` publishes what it gathered."""

    def __init__(self, engine: AsyncEngine, publish: Callable[[LiveEvent], None]) -> None:
        self.engine = engine
        self.publish = publish
        self._notes = Notes()
        self._overflow = False
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def __call__(self, notes: Notes) -> None:
        if self._overflow:
            return
        self._notes.absorb(notes)
        if len(self._notes.alerts) + len(self._notes.households) > NOTES_LIMIT:
            self._notes = Notes()
            self._overflow = True
        self._signal()

    def _signal(self) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a connection returned to the pool outside the loop (rare)
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._wake.set)
            return
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Publish what was gathered until `stop` is set, then what is left."""
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            await first_of(self._wake.wait(), stop.wait())
            self._wake.clear()
            await self.flush()
        await self.flush()

    async def flush(self) -> None:
        """Publish what was gathered so far."""
        notes, self._notes = self._notes, Notes()
        if self._overflow:
            self._overflow = False
            self.publish(Resync("live feed overflow"))
        if not notes:
            return
        try:
            changed = await self._resolve(notes)
        except SQLAlchemyError:
            log.exception("live feed: could not read the changed alerts; asking for a resync")
            self.publish(Resync("alerts unreadable"))
            return
        self.publish(changed)

    async def _resolve(self, notes: Notes) -> Changed:
        kinds = alert_changes(notes.alerts)
        out: list[AlertChanged] = []
        ids = sorted(kinds)
        if ids:
            out = await self._alert_rows(ids, kinds)
        return Changed(
            alerts=tuple(out),
            households=frozenset(notes.households),
            warnings=frozenset(notes.warnings),
        )

    async def _alert_rows(
        self, ids: list[int], kinds: dict[int, list[ChangeKind]]
    ) -> list[AlertChanged]:
        out: list[AlertChanged] = []
        async with self.engine.connect() as conn:
            for start in range(0, len(ids), CHUNK):
                rows = await conn.execute(
                    sa.select(
                        alerts.c.id,
                        alerts.c.household_id,
                        alerts.c.rule_id,
                        alerts.c.severity,
                        alerts.c.status,
                    ).where(alerts.c.id.in_(ids[start : start + CHUNK]))
                )
                for row in rows:
                    out += [
                        AlertChanged(
                            row.id, row.household_id, row.rule_id, row.severity, row.status, kind
                        )
                        for kind in kinds[row.id]
                    ]
        return out
