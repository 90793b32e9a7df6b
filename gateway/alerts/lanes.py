"""Where notifications wait to be sent: critical alerts in a lane of their own.

A storm of lower notifications (a hub inventing thousands of devices, each "offline") must not
delay a smoke alarm's SMS. Critical notifications wait in the urgent lane, served by workers that
take nothing else; every other one waits in the normal lane, high before medium before low.
Within a severity, the oldest (lowest id) goes first.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum

import sqlalchemy as sa

from gateway.models import Severity

__all__ = ["Lane", "Lanes", "lane_for", "severity_rank"]


class Lane(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


_RANK = {Severity.CRITICAL: 0, Severity.HIGH: 1, Severity.MEDIUM: 2, Severity.LOW: 3}


def lane_for(severity: Severity) -> Lane:
    """The lane a notification about an alert of this severity waits in."""
    return Lane.URGENT if severity is Severity.CRITICAL else Lane.NORMAL


def severity_rank(severity: sa.ColumnElement[str]) -> sa.ColumnElement[int]:
    """SQL for the order the lanes serve: 0 for critical up to 3 for low."""
    return sa.case({s.value: rank for s, rank in _RANK.items()}, value=severity, else_=len(_RANK))


class Lanes:
    """One bounded queue of notification ids per lane; an id waits in a lane at most once."""

    def __init__(self, size: int) -> None:
        self._queues: dict[Lane, asyncio.PriorityQueue[tuple[int, int]]] = {
            lane: asyncio.PriorityQueue(maxsize=size) for lane in Lane
        }
        self._waiting: set[int] = set()

    def put(self, notification_id: int, severity: Severity) -> bool:
        """Queue the id in its lane; False when that lane is full (the row stays pending)."""
        if notification_id in self._waiting:
            return True  # the sweep finds rows that were submitted and are still waiting
        try:
            self._queues[lane_for(severity)].put_nowait((_RANK[severity], notification_id))
        except asyncio.QueueFull:
            return False
        self._waiting.add(notification_id)
        return True

    async def take(self, lane: Lane) -> int:
        """The next id in `lane`: the most severe first, then the oldest."""
        _, notification_id = await self._queues[lane].get()
        self._waiting.discard(notification_id)
        return notification_id

    def holds(self, notification_id: int) -> bool:
        """Whether the id waits in a lane."""
        return notification_id in self._waiting
