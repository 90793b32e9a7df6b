"""Retained messages: the broker's stored copy of a topic's last message.

The broker sends it again to every new subscription, and so on every reconnect of the gateway:
it is the topic's current state, not news. Many hubs retain their devices' state (Zigbee2MQTT
can; every last will is retained). So:

- a retained event (a button press) is an old event replayed, never a new call for help: it is
  dropped and kept as a dead letter saying so;
- a retained reading with its own time is a reading like any other (stored once by its time);
- a retained reading stamped with its arrival time is state: the same as the device's known
  value, it is nothing (and never reopens a resolved alert); a different or unknown value is
  stored and judged as state, but is no sign that the device or the elder is alive now.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from gateway.models import Metric, Reading, ReadingValue

EVENT_METRICS = frozenset({Metric.BUTTON})
"""Metrics whose readings are events (a press), not states."""

RETAINED_EVENT_REASON = (
    "a retained event is an old event the broker replays on every new subscription, "
    "not a new one; ignored"
)

CurrentValue = Callable[[str, str, Metric], ReadingValue | None]
"""(household, device, metric) -> the device's known value, if any."""


@dataclass(slots=True)
class RetainedVerdict:
    readings: list[Reading] = field(default_factory=list)
    """Readings with their own time: ordinary readings."""
    state: list[Reading] = field(default_factory=list)
    """New or changed states stamped with the arrival time: stored, judged, no sign of life."""
    events: list[Reading] = field(default_factory=list)
    """Dropped: old events replayed."""
    unchanged: int = 0
    """Dropped: the state the gateway already knows."""


def judge_retained(
    readings: list[Reading], received_at: datetime, current: CurrentValue
) -> RetainedVerdict:
    """Sort the readings of one retained message (see the module's docstring)."""
    verdict = RetainedVerdict()
    for r in readings:
        if r.metric in EVENT_METRICS:
            verdict.events.append(r)
        elif r.ts != received_at:
            verdict.readings.append(r)
        elif current(r.household_id, r.device_id, r.metric) == r.value:
            verdict.unchanged += 1
        else:
            verdict.state.append(r)
    return verdict
