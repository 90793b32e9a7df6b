"""Inactivity rules: no water used, no electricity used, the day's routine not started.

All three are condition rules about the whole household (device id `household`): they open on
the scheduler tick when a sign of life is missing, clear themselves when it comes back, are
suspended while the household is away (and for a whole window after it comes back), and alert
once per spell of inactivity, so a visitor who resolves one after a phone call is not asked
again until there has been activity. Alerts that fall due at night wait until the night ends.
While one of them is open the other two do not open: one "no sign of life" alert per household
(the engine sees to it, for every alert on the device `household`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import Field, model_validator

from gateway.devices.catalogue import format_value
from gateway.models import (
    HOUSEHOLD_DEVICE,
    EvidenceValue,
    Finding,
    FindingAction,
    Metric,
    Reading,
    Severity,
)
from gateway.rules.activity import (
    ACTIVITY_METRICS,
    POWER_METRICS,
    ActivityKind,
    ActivityLog,
    Expected,
    at_local,
    expected_start,
    is_night,
    routine_day,
    waking_time,
)
from gateway.rules.base import SPELL_KEY, HouseholdState, Rule, RuleConfig


def _iso(ts: datetime | None) -> str | None:
    return ts.isoformat() if ts is not None else None


def _metered_through(log: ActivityLog, kind: ActivityKind, start: datetime) -> bool:
    """Whether the meter has watched the whole window from `start`: reporting before it began
    and at least once inside it (a silent meter is device_offline's business, not ours)."""
    since = log.metered_since.get(kind)
    heard = log.meter_heard.get(kind)
    return since is not None and since <= start and heard is not None and heard > start


def _returned_within(log: ActivityLog, now: datetime, start: datetime) -> bool:
    back = log.back_since(now)
    return back is not None and back > start


C = TypeVar("C", bound=RuleConfig)


class _Inactivity(Generic[C]):
    """What the three rules share: suspension while away, and clearing."""

    id: ClassVar[str]
    config: C

    def _suspended(self, state: HouseholdState, now: datetime) -> list[Finding] | None:
        """Findings when the rule has nothing else to do now (away, or already open)."""
        away = state.log.away_at(now)
        if state.alert_opened_at(self.id, HOUSEHOLD_DEVICE) is not None:
            if away is None:
                return []
            return [self._clear(state, now, "household is away", {"away_until": _iso(away.end)})]
        return [] if away is not None else None

    def _open(
        self,
        state: HouseholdState,
        now: datetime,
        summary: str,
        since: datetime | None,
        evidence: dict[str, EvidenceValue],
        *,
        unknown: str = "unknown",
    ) -> list[Finding]:
        """Open, unless this spell of inactivity (since `since`) was alerted already.

        Coming home starts a new spell: what was alerted before a trip is history.
        """
        back = state.log.back_since(now)
        if back is not None and (since is None or back > since):
            since = back
        spell = since.isoformat() if since is not None else unknown
        if state.log.alerted.get(self.id) == spell:
            return []  # this spell was alerted already (and someone closed the alert)
        return [
            state.household_finding(
                self.id,
                self.config,
                FindingAction.OPEN,
                now,
                summary,
                {**evidence, SPELL_KEY: spell},
            )
        ]

    def _clear(
        self,
        state: HouseholdState,
        ts: datetime,
        summary: str,
        evidence: dict[str, EvidenceValue],
    ) -> Finding:
        return state.household_finding(
            self.id, self.config, FindingAction.CLEAR, ts, summary, evidence
        )


class NoWaterUseConfig(RuleConfig):
    severity: Severity = Severity.HIGH
    window_h: float = Field(default=12.0, ge=1, le=36)
    """Look back this many hours..."""
    min_litres: float = Field(default=10.0, ge=0, le=1000)
    """...and alert when less than this was used in them (10 l in 12 h, as pilots use: a few
    flushes in the night do not hide a morning with no washing, no kettle, no cooking)."""


class NoWaterUse(_Inactivity[NoWaterUseConfig]):
    """Less than `min_litres` of water used in the last `window_h` hours.

    Needs a water meter that has reported since before the window began and at least once
    within it. Clears once `min_litres` have been used since the alert opened: a real return
    to use, not the window's total wobbling around the threshold (which would open and clear
    the alert over and over on an evening after a day out).
    """

    id: ClassVar[str] = "no_water_use"
    metrics: ClassVar[frozenset[Metric] | None] = frozenset({Metric.WATER_TOTAL_L})
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = True

    def __init__(self, config: NoWaterUseConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        used = state.consumption
        opened = state.alert_opened_at(self.id, HOUSEHOLD_DEVICE)
        if (
            reading.metric is not Metric.WATER_TOTAL_L
            or used is None
            or used.amount <= 0
            or opened is None
        ):
            return []
        litres = state.log.water_used(opened) + used.amount
        if litres < self.config.min_litres:
            return []
        evidence: dict[str, EvidenceValue] = {"litres": round(litres, 1)}
        return [self._clear(state, reading.ts, "water used again", evidence)]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        suspended = self._suspended(state, now)
        if suspended is not None:
            return suspended
        log = state.log
        window = timedelta(hours=self.config.window_h)
        start = now - window
        if not _metered_through(log, ActivityKind.WATER, start):
            return []
        if _returned_within(log, now, start) or is_night(now, state.tz, state.activity_config):
            return []
        litres = log.water_used(start)
        if litres >= self.config.min_litres:
            return []
        since = _last_enough_water(log, window, self.config.min_litres)
        used = format_value(Metric.WATER_TOTAL_L, litres)
        summary = f"{used} of water used in {self.config.window_h:g} h"
        evidence: dict[str, EvidenceValue] = {
            "litres": round(litres, 1),
            "window_h": self.config.window_h,
            "min_litres": self.config.min_litres,
            "last_water_use": _iso(log.last.get(ActivityKind.WATER)),
        }
        return self._open(state, now, summary, since, evidence)

    def quiet_until(self, state: HouseholdState, now: datetime) -> datetime | None:
        """Until the water that keeps the window at `min_litres` leaves it (water used
        meanwhile only puts that off)."""
        if state.alert_opened_at(self.id, HOUSEHOLD_DEVICE) is not None:
            return None  # open: it may clear when the household goes away
        total = 0.0
        for until, litres in sorted(state.log.water, reverse=True):
            total += litres
            if total >= self.config.min_litres:
                return until + timedelta(hours=self.config.window_h)
        return None


def _last_enough_water(log: ActivityLog, window: timedelta, min_litres: float) -> datetime | None:
    """When the water used in a window last reached `min_litres`: the start of this spell."""
    entries = sorted(log.water)
    first, total = 0, 0.0
    latest: datetime | None = None
    for end, litres in entries:
        total += litres
        while entries[first][0] <= end - window:
            total -= entries[first][1]
            first += 1
        if total >= min_litres:
            latest = end
    return latest if latest is not None else log.metered_since.get(ActivityKind.WATER)


class NoPowerUseConfig(RuleConfig):
    severity: Severity = Severity.HIGH
    window_h: float = Field(default=12.0, ge=1, le=36)
    """Electricity at standby (see [activity] standby_w) for this many hours, not counting
    night hours."""


class NoPowerUse(_Inactivity[NoPowerUseConfig]):
    """No appliance used (power above standby) for `window_h` waking hours (night hours,
    when nothing but the fridge runs, do not count), on a meter that reported in the last
    `window_h` hours, and no other sign of life (water, motion, the door, a button, a
    measurement) in that time either: a home whose taps run is not silent. Clears at the next
    use above standby.
    """

    id: ClassVar[str] = "no_power_use"
    metrics: ClassVar[frozenset[Metric] | None] = POWER_METRICS
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = True

    def __init__(self, config: NoPowerUseConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if (
            state.activity_now is not ActivityKind.POWER
            or state.alert_opened_at(self.id, HOUSEHOLD_DEVICE) is None
        ):
            return []
        evidence: dict[str, EvidenceValue] = {"device_id": reading.device_id}
        return [self._clear(state, reading.ts, "electricity used again", evidence)]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        suspended = self._suspended(state, now)
        if suspended is not None:
            return suspended
        log = state.log
        window = timedelta(hours=self.config.window_h)
        # Night hours do not count: a fridge humming from dinner to breakfast is normal.
        if is_night(now, state.tz, state.activity_config):
            return []
        last = log.last.get(ActivityKind.POWER)
        since = last or log.metered_since.get(ActivityKind.POWER)
        heard = log.meter_heard.get(ActivityKind.POWER)
        if since is None or heard is None or now - since < window:
            return []
        waking = waking_time(since, now, state.tz, state.activity_config)
        if waking < window or heard < now - window:
            return []
        back = log.back_since(now)
        if back is not None and waking_time(back, now, state.tz, state.activity_config) < window:
            return []
        other = log.last_activity(besides=frozenset({ActivityKind.POWER}))
        if other is not None and waking_time(other, now, state.tz, state.activity_config) < window:
            return []  # water, motion or the door show life: a quiet meter alone is no alarm
        hours = (now - since).total_seconds() / 3600
        summary = f"electricity at standby for {hours:.0f} h"
        evidence: dict[str, EvidenceValue] = {
            "window_h": self.config.window_h,
            "standby_w": state.activity_config.standby_w,
            "last_power_use": _iso(last),
        }
        return self._open(state, now, summary, since, evidence)

    def quiet_until(self, state: HouseholdState, now: datetime) -> datetime | None:
        """Until `window_h` waking hours could first have passed since the last use (or since
        the meter first reported), since coming home and since any other sign of life: waking
        hours pass no faster than the clock, and readings only move those times later."""
        if state.alert_opened_at(self.id, HOUSEHOLD_DEVICE) is not None:
            return None
        log = state.log
        since = log.last.get(ActivityKind.POWER) or log.metered_since.get(ActivityKind.POWER)
        if since is None:
            return None
        window = timedelta(hours=self.config.window_h)
        until = since + window
        others = log.back_since(now), log.last_activity(besides=frozenset({ActivityKind.POWER}))
        for mark in (since, *others):
            if mark is not None:
                waking = waking_time(mark, now, state.tz, state.activity_config)
                until = max(until, now + (window - waking))
        return until


class MissedRoutineConfig(RuleConfig):
    severity: Severity = Severity.HIGH
    history_days: int = Field(default=28, ge=7, le=28)
    """Learn from this many past days."""
    min_days: int = Field(default=7, ge=3, le=28)
    """Days of history needed before the rule starts; until then the fixed rules cover."""
    min_same_type_days: int = Field(default=4, ge=2, le=20)
    """Weekdays and weekends are learned apart once there are this many days of the type."""
    margin_min: float = Field(default=60.0, ge=15, le=360)
    """The late bound is at least this long after the usual start..."""
    spread_factor: float = Field(default=1.5, ge=0, le=10)
    """...or this many interquartile ranges of the household's start times, if more..."""
    max_late_min: float = Field(default=180.0, ge=30, le=720)
    """...but never more than this after the usual start."""
    early_min: float = Field(default=60.0, ge=0, le=360)
    """Activity from this long before the usual start counts as the morning's (a visit to the
    toilet at three in the morning does not)."""

    @model_validator(mode="after")
    def _bounds_agree(self) -> MissedRoutineConfig:
        if self.min_days > self.history_days:
            raise ValueError("min_days must not exceed history_days")
        if self.margin_min > self.max_late_min:
            raise ValueError("margin_min must not exceed max_late_min")
        return self


@dataclass(slots=True)
class _Cached:
    key: tuple[date, int, int]
    """The day, and how many days and away periods the history had (it changes rarely)."""
    expected: Expected | None


class MissedRoutine(_Inactivity[MissedRoutineConfig]):
    """No sign of life by the household's learned late bound (see `expected_start`).

    Any activity (water, electricity above standby, motion, the door, a button, a measurement)
    since `early_min` before the usual start means the day has begun. Clears at the next
    activity. Needs something heard from the home since then: a home whose hub is down is
    device_offline's business.
    """

    id: ClassVar[str] = "missed_routine"
    metrics: ClassVar[frozenset[Metric] | None] = ACTIVITY_METRICS
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = True

    def __init__(self, config: MissedRoutineConfig) -> None:
        self.config = config
        self._cache: dict[str, _Cached] = {}

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if state.activity_now is None or state.alert_opened_at(self.id, HOUSEHOLD_DEVICE) is None:
            return []
        evidence: dict[str, EvidenceValue] = {
            "activity": state.activity_now.value,
            "device_id": reading.device_id,
        }
        return [self._clear(state, reading.ts, "activity again", evidence)]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        suspended = self._suspended(state, now)
        if suspended is not None:
            return suspended
        expected = self.expected(state, now)
        if expected is None or now < expected.late:
            return []
        log = state.log
        day_begins = at_local(expected.day, 0, state.tz, state.activity_config.day_start)
        since = max(expected.usual - timedelta(minutes=self.config.early_min), day_begins)
        if _returned_within(log, now, since):
            return []
        if log.heard is None or log.heard < since:
            return []
        last = log.last_activity()
        if last is not None and last >= since:
            return []
        local = state.tz
        summary = (
            f"no activity by {expected.late.astimezone(local):%H:%M}"
            f" (usually from about {expected.usual.astimezone(local):%H:%M})"
        )
        evidence: dict[str, EvidenceValue] = {
            "usual_start": expected.usual.isoformat(),
            "late_bound": expected.late.isoformat(),
            "learned_days": expected.days,
            "spread_min": expected.spread_min,
            "weekday_aware": expected.weekday_aware,
            "last_activity": _iso(last),
        }
        return self._open(
            state, now, summary, last, evidence, unknown=f"none before {expected.day}"
        )

    def expected(self, state: HouseholdState, now: datetime) -> Expected | None:
        """The household's learned start for the routine day of `now` (cached until the day
        or the history changes)."""
        day = routine_day(now, state.tz, state.activity_config.day_start)
        key = (day, len(state.log.first_activity), len(state.log.away))
        cached = self._cache.get(state.household_id)
        if cached is None or cached.key != key:
            c = self.config
            expected = expected_start(
                state.log,
                day,
                state.tz,
                state.activity_config,
                history_days=c.history_days,
                min_days=c.min_days,
                min_same_type_days=c.min_same_type_days,
                margin_min=c.margin_min,
                spread_factor=c.spread_factor,
                max_late_min=c.max_late_min,
            )
            cached = self._cache[state.household_id] = _Cached(key, expected)
        return cached.expected


@dataclass(frozen=True, slots=True)
class RoutineSummary:
    """What the rules know of a household's activity now, for people (the API)."""

    timezone: str
    last_heard: datetime | None
    last_activity: dict[str, datetime]
    away_until: datetime | None
    water_used_12h_l: float | None
    """Water used in the last 12 hours; None without a water meter."""
    routine: Literal["learned", "learning", "off"]
    """"learning" while fewer than min_days are known; "off" when missed_routine is disabled."""
    days_known: int
    """Days of the history window with a known start of the day."""
    min_days: int | None
    expected: Expected | None


def summarize(state: HouseholdState, rules: Sequence[Rule], now: datetime) -> RoutineSummary:
    """The household's activity and learned routine as the rules see them at `now`."""
    log = state.log
    missed = next((r for r in rules if isinstance(r, MissedRoutine)), None)
    expected = missed.expected(state, now) if missed is not None else None
    day = routine_day(now, state.tz, state.activity_config.day_start)
    history = missed.config.history_days if missed is not None else 28
    known = sum(
        1 for back in range(1, history + 1) if day - timedelta(days=back) in log.first_activity
    )
    away = log.away_at(now)
    metered = ActivityKind.WATER in log.metered_since
    routine: Literal["learned", "learning", "off"] = "off"
    if missed is not None:
        routine = "learned" if expected is not None else "learning"
    return RoutineSummary(
        timezone=str(state.tz.key),
        last_heard=log.heard,
        last_activity={kind.value: ts for kind, ts in sorted(log.last.items())},
        away_until=away.end if away is not None else None,
        water_used_12h_l=round(log.water_used(now - timedelta(hours=12)), 1) if metered else None,
        routine=routine,
        days_known=known,
        min_days=missed.config.min_days if missed is not None else None,
        expected=expected,
    )
