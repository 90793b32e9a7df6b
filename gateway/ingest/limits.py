"""Flood limits per household: one hub gone wrong (or hostile) must not bury the others' alarms.

- A message rate: a token bucket per household. Over it, the household's ordinary traffic
  (meters, vitals, statuses) is shed; alarms always pass. The bucket runs on the message's own
  time when it has one, so the backlog a restarted gateway drains (hours of readings arriving
  in seconds) is not taken for a flood; that time counts no later than the arrival and no
  earlier than `BACKLOG_SPAN` before it, so forged timestamps cannot buy a hub more.
- A quota of devices registered just by sending: past it, a new device's readings are dead
  letters until an installer registers it; its alarms still pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.models import Metric, Reading

BACKLOG_SPAN = timedelta(hours=12)
"""How far back a message's own time counts for the rate (a gateway's outage this long)."""

ALARM_METRICS = frozenset({Metric.SMOKE, Metric.GAS_LEAK, Metric.WATER_LEAK, Metric.FALL})


def is_alarm(reading: Reading) -> bool:
    """A reading that raises or withdraws an alarm: smoke, gas, a leak, a fall, a button."""
    if reading.metric is Metric.BUTTON:
        return True  # a call for help, or the elder withdrawing one
    return reading.metric in ALARM_METRICS and reading.value is True


def carries_alarm(readings: Iterable[Reading]) -> bool:
    return any(is_alarm(r) for r in readings)


def rate_time(readings: list[Reading], received_at: datetime) -> datetime:
    """The time a message counts at for its household's rate (see the module's docstring)."""
    own = max((r.ts for r in readings), default=received_at)
    return min(max(own, received_at - BACKLOG_SPAN), received_at)


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: datetime
    shed_noted: datetime | None = None


class HouseholdRate:
    """How fast each household may send: `per_s` on average, bursts of `burst`."""

    NOTE_EVERY_S = 60.0
    """A shedding household gets one dead letter per minute; every shed message is counted."""

    def __init__(self, per_s: float, burst: int, *, most_households: int = 200_000) -> None:
        self.per_s = per_s
        self.burst = float(burst)
        self.most_households = most_households
        self._buckets: dict[str, _Bucket] = {}

    def batch(self) -> RateWindow:
        """Decide for one batch; what it spends counts only once `commit`ted (a batch the
        database refuses and that is tried again must not pay twice)."""
        return RateWindow(self)

    def reason(self, household_id: str) -> str:
        return (
            f"household {household_id} sends more than {self.per_s:g} messages/s on average "
            f"(bursts of {self.burst:g}): its ordinary messages are shed while it does, alarms "
            "still pass; one dead letter a minute, every shed message counted in "
            "iot_gateway_shed_messages_total"
        )

    def _copy(self, household_id: str, at: datetime) -> _Bucket:
        """A batch's own copy of the household's bucket (a full one if it has none)."""
        held = self._buckets.get(household_id)
        if held is None:
            return _Bucket(self.burst, at)
        return _Bucket(held.tokens, held.at, held.shed_noted)

    def _refill(self, bucket: _Bucket, at: datetime) -> None:
        elapsed = (at - bucket.at).total_seconds()
        if elapsed > 0:
            bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.per_s)
            bucket.at = at

    def _keep(self, buckets: dict[str, _Bucket]) -> None:
        if len(self._buckets) + len(buckets) > self.most_households:
            self._forget_full(max(b.at for b in buckets.values()))
        self._buckets.update(buckets)

    def _forget_full(self, at: datetime) -> None:
        """Drop buckets that have refilled: the same as no bucket at all."""
        self._buckets = {
            h: b
            for h, b in self._buckets.items()
            if b.tokens + (at - b.at).total_seconds() * self.per_s < self.burst
        }


class RateWindow:
    """One batch's decisions, on copies of the buckets it touches (made once per household:
    this runs for every message)."""

    def __init__(self, rate: HouseholdRate) -> None:
        self.rate = rate
        self._buckets: dict[str, _Bucket] = {}

    def admit(self, household_id: str, at: datetime, *, alarm: bool) -> tuple[bool, bool]:
        """(take it, keep it as a dead letter): an alarm is always taken (and costs a token);
        of the messages shed, the first of each minute is kept as a dead letter."""
        bucket = self._buckets.get(household_id)
        if bucket is None:
            bucket = self._buckets[household_id] = self.rate._copy(household_id, at)
        self.rate._refill(bucket, at)
        if bucket.tokens >= 1 or alarm:
            bucket.tokens = max(bucket.tokens - 1, 0.0)
            return True, False
        noted = bucket.shed_noted
        note = noted is None or (at - noted).total_seconds() >= HouseholdRate.NOTE_EVERY_S
        if note:
            bucket.shed_noted = at
        return False, note

    def commit(self) -> None:
        if self._buckets:
            self.rate._keep(self._buckets)
        self._buckets = {}


def device_limit_reason(household_id: str, device_id: str, quota: int) -> str:
    return (
        f"household {household_id} already has {quota} devices registered by their own "
        f"messages and not yet confirmed; register {device_id!r} with "
        f"PUT /api/households/{household_id}/devices/{device_id} (or confirm the others) to "
        "take its readings; its alarms still pass"
    )
