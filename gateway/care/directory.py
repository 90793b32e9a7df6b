"""Which households are registered, cached so ingest does not ask the database per message."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.care.households import all_household_ids, household_exists
from gateway.clock import Clock
from gateway.expiring import ExpiringKeys

# How long "no such household" is believed before the database is asked again; a household
# registered by another gateway process is picked up within this time.
NEGATIVE_TTL = timedelta(seconds=30)


class HouseholdDirectory:
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._known: set[str] = set()
        self._unknown: ExpiringKeys[str] = ExpiringKeys(NEGATIVE_TTL)

    async def load(self, conn: AsyncConnection) -> None:
        self._known = await all_household_ids(conn)

    def remember(self, household_id: str) -> None:
        """A household was just registered (by the API in this process)."""
        self._known.add(household_id)
        self._unknown.discard(household_id)

    def forget(self, household_id: str) -> None:
        """A household was erased (by the API in this process): its messages are refused."""
        self._known.discard(household_id)

    async def unknown_among(self, conn: AsyncConnection, ids: Iterable[str]) -> set[str]:
        """The ids in `ids` that are not registered households."""
        now = self.clock.now()
        unknown = set()
        for household_id in set(ids) - self._known:
            if self._unknown.holds(household_id, now):
                unknown.add(household_id)
            elif await household_exists(conn, household_id):
                self.remember(household_id)
            else:
                self._unknown.add(household_id, now)
                unknown.add(household_id)
        return unknown
