"""Publish a simulated stream to a broker, paced by simulated time at any speed-up."""

from __future__ import annotations

import math
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from simulators.broker import BrokerUnavailable, Outbox
from simulators.model import Message

__all__ = ["BrokerUnavailable", "LivePublisher", "LiveSummary"]

Progress = Callable[[int, float], None]
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class LiveSummary:
    messages: int
    simulated_s: float
    """Simulated time from the first to the last message sent."""
    wall_s: float
    rate: float
    """Messages per real second achieved."""
    stopped: bool
    """True when `stop()` ended the run before the stream did."""

    def describe(self) -> str:
        """One line for a person: what was sent, over what simulated span, how fast."""
        how = "stopped after" if self.stopped else "sent"
        return (
            f"{how} {self.messages} messages covering {self.simulated_s / 3600:.1f} simulated h"
            f" in {self.wall_s:.1f} s ({self.rate:.0f} msg/s)"
        )


class LivePublisher:
    """Publishes messages (QoS 1, MQTT 3.1.1, retained flags kept) at `speed` x real time.

    `speed` is simulated seconds per real second; 0 or inf sends as fast as the broker takes
    them. `run` blocks until the stream ends or `stop()` is called from another thread.
    """

    def __init__(
        self,
        broker_url: str,
        *,
        speed: float = 60.0,
        client_id: str | None = None,
        qos: int = 1,
        max_outstanding: int = 1000,
        connect_timeout_s: float = 10.0,
        progress: Progress | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.broker_url = broker_url
        self.speed = math.inf if speed == 0 else speed
        self.client_id = client_id or f"care-sim-{secrets.token_hex(4)}"
        self.qos = qos
        self.max_outstanding = max_outstanding
        self.connect_timeout_s = connect_timeout_s
        self.progress = progress
        self._stop = threading.Event()

    def stop(self) -> None:
        """Ask a running `run` to finish after the message in hand (thread-safe)."""
        self._stop.set()

    def run(self, messages: Iterable[Message], *, progress: Progress | None = None) -> LiveSummary:
        """Publish `messages` in order, paced; BrokerUnavailable if the broker is not there.

        `progress` (or the one given to the constructor) is called with (messages sent,
        simulated ts) about twice a second and once at the end.
        """
        report = progress or self.progress
        sent, first_ts, last_ts = 0, None, None
        began = time.monotonic()
        next_report = began + PROGRESS_EVERY_S
        with Outbox(
            self.broker_url,
            client_id=self.client_id,
            max_outstanding=self.max_outstanding,
            connect_timeout_s=self.connect_timeout_s,
        ) as outbox:
            began = time.monotonic()
            for message in messages:
                if first_ts is None:
                    first_ts = message.ts
                if math.isfinite(self.speed):
                    due = began + (message.ts - first_ts) / self.speed
                    delay = due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                if self._stop.is_set():
                    break
                outbox.publish(message.topic, message.payload, qos=self.qos, retain=message.retain)
                sent, last_ts = sent + 1, message.ts
                if report is not None and time.monotonic() >= next_report:
                    report(sent, message.ts)
                    next_report = time.monotonic() + PROGRESS_EVERY_S
            if not outbox.drain(timeout_s=30.0):
                raise BrokerUnavailable("the broker did not acknowledge every message in 30 s")
        wall = time.monotonic() - began
        if report is not None and last_ts is not None:
            report(sent, last_ts)
        span = (last_ts - first_ts) if first_ts is not None and last_ts is not None else 0.0
        return LiveSummary(sent, span, wall, sent / wall if wall > 0 else 0.0, self._stop.is_set())
