"""Injectable time: nothing in rules/ or alerts/ asks the system for the time itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to (tests, replays, simulators)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)


class EventClock:
    """Time is the newest event time seen (`iot-gateway run --clock event`).

    Time-driven rules then follow the traffic: a simulator running a day in a minute, or a
    stream replayed from a recording, opens "no water for 12 hours" after 12 hours of *its*
    time. Before the first reading it reads the system clock. A reading stamped more than
    `max_jump` ahead of the current time (a device whose clock is wrong) does not move it.
    """

    def __init__(self, max_jump: timedelta = timedelta(days=1)) -> None:
        self._newest: datetime | None = None
        self.max_jump = max_jump

    def now(self) -> datetime:
        return self._newest if self._newest is not None else datetime.now(UTC)

    def observe(self, ts: datetime) -> None:
        """A reading with event time `ts` was accepted."""
        ts = ts.astimezone(UTC)
        if self._newest is None or self._newest < ts <= self._newest + self.max_jump:
            self._newest = ts
