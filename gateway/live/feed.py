"""The live feed of one gateway process, wired: capture -> collector -> bus -> hub."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.live.bus import CHANNEL, Bus, LocalBus, PostgresBus
from gateway.live.capture import CommitCapture
from gateway.live.collector import ChangeCollector
from gateway.live.events import Changed, LiveEvent, Resync
from gateway.live.hub import LiveHub, Subscriber, Visible, VisibleLoader
from gateway.observability import GatewayMetrics


class LiveFeed:
    """Hears this process's commits, shares them with the other processes (PostgreSQL) and
    tells the subscribers; built by the composition root, run in its task group."""

    def __init__(
        self,
        engine: AsyncEngine,
        metrics: GatewayMetrics,
        *,
        interval_s: float = 0.25,
        channel: str = CHANNEL,
    ) -> None:
        self.metrics = metrics
        self.hub = LiveHub(interval_s=interval_s, on_count=metrics.live_clients.set)
        self.on_registry: Callable[[frozenset[str]], None] | None = None
        """Told of households whose registry entry or settings changed in another process
        (PostgreSQL): the detector reloads their zone, rule overrides and away periods."""
        self.bus: Bus
        if engine.dialect.name == "postgresql":
            self.bus = PostgresBus(engine, self.hub.deliver, heard=self._heard, channel=channel)
        else:
            self.bus = LocalBus(self.hub.deliver)
        self.collector = ChangeCollector(engine, self.publish)
        self.capture = CommitCapture(engine, self.collector)
        self.capture.install()
        self._stop = asyncio.Event()

    def publish(self, event: LiveEvent) -> None:
        """Tell every process's subscribers (committed changes only)."""
        if isinstance(event, Resync):
            self.metrics.live_events.labels("resync").inc()
        else:
            for kind, count in (
                ("alerts", len(event.alerts)),
                ("households", len(event.households)),
                ("warnings", len(event.warnings)),
            ):
                if count:
                    self.metrics.live_events.labels(kind).inc(count)
        self.bus.publish(event)

    def _heard(self, event: LiveEvent) -> None:
        # Only another process's changes: this process's own were reloaded by whoever made them
        # (an echo here would reload them again, in a task nobody waits for).
        if isinstance(event, Changed) and event.registry and self.on_registry is not None:
            self.on_registry(event.registry)

    def registry_changed(self, household_id: str) -> None:
        """A household's registry entry changed (committed): its page and who sees it."""
        self.publish(
            Changed(households=frozenset({household_id}), registry=frozenset({household_id}))
        )

    @contextmanager
    def subscribe(self, visible: Visible, reload_visible: VisibleLoader) -> Iterator[Subscriber]:
        with self.hub.subscribe(visible, reload_visible) as subscriber:
            yield subscriber

    async def run(self) -> None:
        """Publish and listen until `stop`; what was committed meanwhile is still published."""
        # The bus stops after the collector: its last flush still reaches the other processes.
        bus_stop = asyncio.Event()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.bus.run(bus_stop), name="live-bus")
            try:
                await self.collector.run(self._stop)
            finally:
                bus_stop.set()

    def close_subscribers(self) -> None:
        """Shutting down: every WebSocket is closed (1012); nobody subscribes any more."""
        self.hub.close()

    def stop(self) -> None:
        """End `run` once what is gathered has been published."""
        self._stop.set()
