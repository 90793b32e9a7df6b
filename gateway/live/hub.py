"""Fans live events out to subscribers: each sees only its households, at most one frame per
interval, and gets a `resync` instead of an unbounded backlog when it falls behind."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from gateway.live.events import AlertChanged, LiveEvent, Resync

log = logging.getLogger(__name__)

Visible = frozenset[str] | None
"""The household ids a subscriber may see; None: every household (an admin)."""
VisibleLoader = Callable[[], Awaitable[Visible]]
Frame = dict[str, object]

FRAME_INTERVAL_S = 0.25
PENDING_LIMIT = 5000
"""Distinct changes a subscriber may have waiting; past that it gets a `resync` instead."""


class Subscriber:
    """One listener (a WebSocket): its scope, and the changes merged since its last frame."""

    def __init__(
        self,
        visible: Visible,
        reload_visible: VisibleLoader,
        *,
        interval_s: float = FRAME_INTERVAL_S,
        limit: int = PENDING_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.visible = visible
        self.reload_visible = reload_visible
        self.interval_s = interval_s
        self.limit = limit
        self.monotonic = monotonic
        self.closed = False
        self._alerts: dict[tuple[int, str], AlertChanged] = {}
        self._households: set[str] = set()
        self._warnings: set[int] = set()
        self._recheck: set[str] = set()
        """Registry changes the scope is to be reloaded for before the next frame."""
        self._resync = False
        self._wake = asyncio.Event()
        self._last_frame = -interval_s

    def sees(self, household_id: str) -> bool:
        return self.visible is None or household_id in self.visible

    def offer(self, event: LiveEvent) -> None:
        """Merge what this subscriber may see of `event` into its next frame."""
        if self.closed:
            return
        if isinstance(event, Resync):
            self.resync()
            return
        if self.visible is not None:
            self._recheck |= event.registry
        if self._resync:
            return  # everything is refetched anyway (the scope reloaded first)
        for alert in event.alerts:
            if self.sees(alert.household_id):
                # One entry per alert and kind of change, with the latest status.
                key = (alert.id, alert.change)
                self._alerts.pop(key, None)
                self._alerts[key] = alert
        self._households.update(h for h in event.households if self.sees(h))
        self._warnings.update(w for w, h in event.warnings if self.sees(h))
        if self._pending_count() > self.limit:
            self.resync()
            return
        if self._alerts or self._households or self._warnings or self._recheck:
            self._wake.set()

    def resync(self) -> None:
        """Drop what is waiting: the listener is to refetch everything instead."""
        self._clear()
        self._resync = True
        self._wake.set()

    def close(self) -> None:
        self.closed = True
        self._wake.set()

    async def next_frame(self) -> Frame | None:
        """The next frame to send, no sooner than the interval after the last; None: closed."""
        while True:
            await self._wake.wait()
            if self.closed:
                return None
            delay = self._last_frame + self.interval_s - self.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)  # more may be merged meanwhile
                if self.closed:
                    return None
            if self._recheck:
                await self._reload_scope()
            self._wake.clear()
            frame = self._take()
            if frame is not None:
                self._last_frame = self.monotonic()
                return frame

    async def _reload_scope(self) -> None:
        """Registry changes may have widened or narrowed the scope: load it again, and tell
        of the changed households that are now visible."""
        changed, self._recheck = self._recheck, set()
        self.visible = await self.reload_visible()
        if not self._resync:
            self._households.update(h for h in changed if self.sees(h))

    def _take(self) -> Frame | None:
        if self._resync:
            self._resync = False
            return {"type": "resync"}
        if not (self._alerts or self._households or self._warnings):
            return None
        frame: Frame = {
            "type": "changes",
            "alerts": [a.frame() for a in self._alerts.values()],
            "households": sorted(self._households),
            "warnings": sorted(self._warnings),
        }
        self._clear()
        return frame

    def _pending_count(self) -> int:
        return len(self._alerts) + len(self._households) + len(self._warnings)

    def _clear(self) -> None:
        self._alerts = {}
        self._households = set()
        self._warnings = set()


class LiveHub:
    """The subscribers of one process; `deliver` hands each event to every one of them."""

    def __init__(
        self,
        *,
        interval_s: float = FRAME_INTERVAL_S,
        limit: int = PENDING_LIMIT,
        on_count: Callable[[int], None] = lambda n: None,
    ) -> None:
        self.interval_s = interval_s
        self.limit = limit
        self.on_count = on_count
        self.closed = False
        self._subscribers: set[Subscriber] = set()

    @property
    def count(self) -> int:
        return len(self._subscribers)

    @contextmanager
    def subscribe(self, visible: Visible, reload_visible: VisibleLoader) -> Iterator[Subscriber]:
        """A subscriber for the duration of the block (closed at once if the hub is)."""
        subscriber = Subscriber(
            visible, reload_visible, interval_s=self.interval_s, limit=self.limit
        )
        if self.closed:
            subscriber.close()
        self._subscribers.add(subscriber)
        self.on_count(len(self._subscribers))
        try:
            yield subscriber
        finally:
            self._subscribers.discard(subscriber)
            self.on_count(len(self._subscribers))

    def deliver(self, event: LiveEvent) -> None:
        for subscriber in list(self._subscribers):
            try:
                subscriber.offer(event)
            except Exception:  # one subscriber's trouble must not starve the others
                log.exception("live subscriber failed; it will refetch")
                subscriber.resync()

    def close(self) -> None:
        """Shutting down: every subscriber's `next_frame` answers None."""
        self.closed = True
        for subscriber in self._subscribers:
            subscriber.close()
