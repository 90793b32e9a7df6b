"""Two lanes between the broker connection and the pipeline: alarms ahead of ordinary readings.

When storage is slower than the devices, ordinary readings wait in a bounded buffer (the
`ordinary` lane); a smoke alarm, a gas leak, a fall or a call for help must not wait behind
them. The connection sorts each message as it arrives with a cheap look at its raw payload
(`may_carry_alarm`: a superset of what `gateway.ingest.limits.is_alarm` recognises after
decoding, in all five formats) and the pipeline takes the `alarm` lane's messages first, in a
small batch of their own. Both lanes are still decoded, validated, deduplicated and stored by
the same pipeline, and acknowledged only after their commit.

Order per topic is kept: an alarm takes with it the messages of its own topic still waiting in
the ordinary lane, ahead of it, so a device's older "no smoke" or "dry" is never stored or
judged after its newer alarm (a leak alert would close on a stale reading).

A flood of fake alarms must not starve the others: each household has a small budget of
prioritised messages (`AlarmBudget`); past it, its alarms queue in the ordinary lane, in order,
and are still stored and alerted — just not ahead of everybody else. And while ordinary
messages wait, the alarm lane gets at most `MAX_ALARM_STREAK` batches in a row.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.ingest.mqtt import InboundMessage

_ALARM_HINT = re.compile(
    rb'"(?:smoke|gas|gas_leak|water_leak|fall|alarm)"\s*:\s*true'  # booleans: native, z2m, shelly
    rb'|"(?:event|button|action)"'  # native events and buttons, z2m actions: every press counts
    rb"|fall_(?:down_)?status"  # z2m fall radars, whose values are words
    rb"|\\u"  # a key spelt with JSON escapes: look closer rather than miss it
)
"""Where each format puts an alarm: native metric names and `event` (gateway/devices/native.py),
Zigbee2MQTT's `smoke`, `gas`, `water_leak`, `action` and fall fields (zigbee2mqtt.py), Shelly's
`alarm` of its smoke and flood components (shelly.py); Tasmota and wmbusmeters report none.
Alarm values are JSON `true` (the catalogue takes no other boolean) or words under these keys."""

MAX_ALARM_STREAK = 4
"""Alarm batches taken in a row while ordinary messages wait."""


def may_carry_alarm(payload: bytes) -> bool:
    """Whether a raw payload may decode to an alarm reading; never False for one that does.

    About a microsecond: it runs for every message as it is read from the socket. A false positive
    (a wall switch's `action`) only costs that message a place in the alarm lane.
    """
    return _ALARM_HINT.search(payload) is not None


_Queued = tuple[int, "InboundMessage"]
"""A message and its place in the order of arrival."""


def _arrival(queued: _Queued) -> int:
    return queued[0]


class Lane(StrEnum):
    ALARM = "alarm"
    ORDINARY = "ordinary"


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class AlarmBudget:
    """How many messages a second each household may put in the alarm lane (`per_s`, bursts of
    `burst`). A real home raises a handful of alarms an hour; a hub sending more is broken or
    hostile, and its alarms lose their priority (not their storage) until it calms down."""

    def __init__(
        self,
        per_s: float,
        burst: int,
        household_of: Callable[[str], str | None],
        *,
        now: Callable[[], float] = time.monotonic,
        most_households: int = 100_000,
    ) -> None:
        self.per_s = per_s
        self.burst = float(burst)
        self.household_of = household_of
        self.now = now
        self.most_households = most_households
        self._buckets: dict[str, _Bucket] = {}

    def spend(self, topic: str) -> bool:
        """Take one token from the topic's household; False when it has none left (or the
        topic names no household: it will be a dead letter, no need to hurry)."""
        household = self.household_of(topic)
        if household is None:
            return False
        now = self.now()
        bucket = self._buckets.get(household)
        if bucket is None:
            if len(self._buckets) >= self.most_households:
                self._buckets.clear()  # every bucket starts full again: no more than a burst
            bucket = self._buckets[household] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.per_s)
        bucket.at = now
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


class Lanes:
    """The buffer between the broker connection (`put`) and the pipeline (`take`).

    The ordinary lane holds `capacity` messages: once it is `full()` the connection stops
    reading its socket (the broker keeps the rest) until `take` makes room. The alarm lane is
    bounded by the households' budgets instead, and takes a message even then, so an alarm
    read from the socket is never held up by a full buffer. Both ends run on the event loop.
    """

    def __init__(self, capacity: int, budget: AlarmBudget | None) -> None:
        self.capacity = capacity
        self.budget = budget
        self._alarm: deque[_Queued] = deque()
        self._ordinary: deque[_Queued] = deque()
        self._arrivals = 0
        self._ordinary_topics: Counter[str] = Counter()
        """Messages per topic in the ordinary lane: an alarm looks for its elders only if any."""
        self._streak = 0
        self.prioritised = 0
        """Messages taken into the alarm lane (counters read by the metrics)."""
        self.over_budget = 0
        """Possible alarms left in the ordinary lane: their household spent its budget."""

    # The connection.

    def put(self, message: InboundMessage) -> None:
        """Queue one message; the caller reads no more while the ordinary lane is `full()`."""
        self._arrivals += 1
        queued = (self._arrivals, message)
        if self._prioritise(message):
            self._alarm.append(queued)
            self.prioritised += 1
            return
        self._ordinary.append(queued)
        self._ordinary_topics[message.topic] += 1

    def full(self) -> bool:
        """Whether the ordinary lane holds its capacity (or more: see `put`)."""
        return len(self._ordinary) >= self.capacity

    def _prioritise(self, message: InboundMessage) -> bool:
        if self.budget is None or not may_carry_alarm(message.payload):
            return False
        if self.budget.spend(message.topic):
            return True
        self.over_budget += 1
        return False

    # The consumer.

    def take(self, max_batch: int) -> tuple[Lane, list[InboundMessage]] | None:
        """The next batch, alarms first; None if both lanes are empty."""
        if self._alarm and (self._streak < MAX_ALARM_STREAK or not self._ordinary):
            self._streak += 1
            return Lane.ALARM, self._take_alarms(max_batch)
        if self._ordinary:
            self._streak = 0
            return Lane.ORDINARY, self._take_ordinary(max_batch)
        return None

    def _take_alarms(self, max_batch: int) -> list[InboundMessage]:
        alarms = [self._alarm.popleft() for _ in range(min(max_batch, len(self._alarm)))]
        topics = {m.topic for _, m in alarms if self._ordinary_topics[m.topic]}
        if not topics:
            return [m for _, m in alarms]
        # Their topics' ordinary messages come along, all merged in order of arrival (see the
        # module's docstring).
        along = [q for q in self._ordinary if q[1].topic in topics]
        self._ordinary = deque(q for q in self._ordinary if q[1].topic not in topics)
        for topic in topics:
            del self._ordinary_topics[topic]
        return [m for _, m in sorted(along + alarms, key=_arrival)]

    def _take_ordinary(self, max_batch: int) -> list[InboundMessage]:
        count = min(max_batch, len(self._ordinary))
        batch = [self._ordinary.popleft()[1] for _ in range(count)]
        topics = self._ordinary_topics
        for m in batch:
            left = topics[m.topic] - 1
            if left:
                topics[m.topic] = left
            else:
                del topics[m.topic]
        return batch

    # Metrics.

    def depth(self, lane: Lane) -> int:
        return len(self._alarm if lane is Lane.ALARM else self._ordinary)

    def oldest(self) -> datetime | None:
        """When the oldest ordinary message waiting arrived."""
        try:
            return self._ordinary[0][1].received_at
        except IndexError:
            return None
