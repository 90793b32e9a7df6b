"""Signs of life: which readings show someone at home doing something, and what is remembered.

The inactivity rules (no_water_use, no_power_use, missed_routine) and appliance_left_on reason
about a household's activity, not about single readings. The engine classifies each reading
(`classify`) and keeps one `ActivityLog` per household: when each kind of activity was last
seen, the water used over the last two days, when the home was last heard at all, the first
activity of each local day (what missed_routine learns from) and the away periods. The log is
plain data with a JSON form, so it survives a restart (see `gateway.store.rule_state`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gateway.models import Metric, Reading
from gateway.rules.counters import Consumption

WATER_MEMORY = timedelta(hours=48)
"""Water use older than this is forgotten (the longest no_water_use window allowed is 36 h)."""
DAYS_REMEMBERED = 35
"""The start of the day is kept this many days (the longest history allowed is 28)."""
SUSTAINED_AFTER = timedelta(minutes=10)
SUSTAINED_WITHIN = timedelta(minutes=45)
"""A day starts with activity that more activity follows this soon, but not sooner."""
MAX_CANDIDATES = 200
"""Bound on the unconfirmed activity kept per day (a stream of readings seconds apart)."""


class ActivityKind(StrEnum):
    """A kind of sign of life."""

    WATER = "water"
    POWER = "power"
    MOTION = "motion"
    DOOR = "door"
    BUTTON = "button"
    VITALS = "vitals"


VITALS = frozenset(
    {
        Metric.HEART_RATE_BPM,
        Metric.SPO2_PCT,
        Metric.BP_SYSTOLIC_MMHG,
        Metric.BP_DIASTOLIC_MMHG,
        Metric.BODY_TEMP_C,
    }
)

POWER_METRICS = frozenset({Metric.POWER_W, Metric.ENERGY_TOTAL_KWH})
ACTIVITY_METRICS = (
    frozenset(
        {
            Metric.WATER_TOTAL_L,
            Metric.WATER_FLOW_LPM,
            Metric.PRESENCE,
            Metric.DOOR_OPEN,
            Metric.BUTTON,
        }
    )
    | POWER_METRICS
    | VITALS
)
"""The metrics `classify` may find a sign of life in."""


class ActivityConfig(BaseModel):
    """What counts as activity and when a household's day and night are (rules.toml [activity])."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_water_l: float = Field(default=0.5, ge=0, le=100)
    """Water used between two meter readings that counts as someone at home (a dripping tap
    or a meter's rounding does not)."""
    standby_w: float = Field(default=200.0, ge=0, le=10_000)
    """Power above this is an appliance in use; below it, standby (fridge, router, clocks).
    Set it above the household's fridge or freezer cycling."""
    day_start: time = time(4, 0)
    """Local time a day's routine is looked for from (night-time toilet visits before it do
    not count as the morning's first activity)."""
    night_start: time = time(22, 0)
    night_end: time = time(6, 0)
    """Night hours (local): inactivity alerts that fall due at night wait until night_end,
    while the elder sleeps and the visitor does too. Equal times mean no night."""

    @model_validator(mode="after")
    def _local_times(self) -> ActivityConfig:
        for name in ("day_start", "night_start", "night_end"):
            value: time = getattr(self, name)
            if value.tzinfo is not None:
                raise ValueError(f"{name}: a local time of day, without a zone")
        return self


def classify(
    reading: Reading,
    used: Consumption | None,
    config: ActivityConfig,
    *,
    reports_power: bool,
) -> ActivityKind | None:
    """The activity this reading shows, if any.

    `used` is the consumption the reading reveals (meter totals); `reports_power` says whether
    the device also sends instantaneous power, in which case its energy total is not used.
    """
    metric, value = reading.metric, reading.value
    if metric is Metric.WATER_TOTAL_L:
        if used is not None and used.amount >= config.min_water_l:
            return ActivityKind.WATER
        return None
    if metric is Metric.WATER_FLOW_LPM:
        return ActivityKind.WATER if _number(value) > 0 else None
    if metric is Metric.POWER_W:
        return ActivityKind.POWER if _number(value) > config.standby_w else None
    if metric is Metric.ENERGY_TOTAL_KWH:
        if used is None or reports_power:
            return None
        hours = (used.until - used.since).total_seconds() / 3600
        average_w = used.amount * 1000 / hours if hours > 0 else 0.0
        return ActivityKind.POWER if average_w > config.standby_w else None
    if metric is Metric.PRESENCE:
        # A fall radar watching an empty bathroom says presence=false every few minutes.
        return ActivityKind.MOTION if value is True else None
    if metric is Metric.DOOR_OPEN:
        return ActivityKind.DOOR if value is True else None
    if metric is Metric.BUTTON:
        return ActivityKind.BUTTON
    if metric in VITALS:
        return ActivityKind.VITALS
    return None


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return float(value)


@dataclass(frozen=True, slots=True)
class AwayPeriod:
    """The elder is away from home (with relatives, in hospital) from `start` to `end`."""

    start: datetime
    end: datetime

    def covers(self, ts: datetime) -> bool:
        return self.start <= ts < self.end


FALSE_ALARMS_KEPT = 30


@dataclass(slots=True)
class ActivityLog:
    """One household's activity memory. The engine writes it; rules read it."""

    last: dict[ActivityKind, datetime] = field(default_factory=dict)
    """When each kind of activity was last seen."""
    heard: datetime | None = None
    """When anything at all was last heard from the home (a heartbeat will do)."""
    water: list[tuple[datetime, float]] = field(default_factory=list)
    """(end of interval, litres) for each meter interval with use, over WATER_MEMORY, oldest
    first (a list: a deque costs 760 bytes even empty, a list of two intervals 72)."""
    metered_since: dict[ActivityKind, datetime] = field(default_factory=dict)
    """Since when use of water / power has been metered (the first meter reading)."""
    meter_heard: dict[ActivityKind, datetime] = field(default_factory=dict)
    """When a water / power meter last reported, with or without use."""
    first_activity: dict[date, datetime] = field(default_factory=dict)
    """Per routine day (starting at day_start, local), when the day started: its first
    activity followed by more activity 10 to 45 minutes later."""
    candidates_day: date | None = None
    candidates: list[datetime] = field(default_factory=list)
    """Activity of the current routine day not yet confirmed as the start of the day."""
    heavy_since: dict[str, datetime] = field(default_factory=dict)
    """Per device, since when it has drawn a heavy load without a break (appliance_left_on)."""
    alerted: dict[str, str] = field(default_factory=dict)
    """Per inactivity rule, the spell of inactivity it last alerted about (one alert per spell:
    a visitor who resolves it is not asked again until there has been activity)."""
    away: list[AwayPeriod] = field(default_factory=list)
    false_alarms: dict[str, list[datetime]] = field(default_factory=dict)
    """Per inactivity rule, when its alerts opened that the elder answered "I am well" on the
    check-in call (newest last, the last FALSE_ALARMS_KEPT): where this home's quiet spells
    are normal."""

    def note_false_alarm(self, rule_id: str, opened_at: datetime) -> None:
        times = self.false_alarms.setdefault(rule_id, [])
        if opened_at not in times:
            times.append(opened_at)
            times.sort()
            del times[:-FALSE_ALARMS_KEPT]

    def last_activity(self, *, besides: frozenset[ActivityKind] = frozenset()) -> datetime | None:
        times = [ts for kind, ts in self.last.items() if kind not in besides]
        return max(times) if times else None

    def water_used(self, since: datetime) -> float:
        return sum(litres for until, litres in self.water if until > since)

    def away_at(self, ts: datetime) -> AwayPeriod | None:
        return next((p for p in self.away if p.covers(ts)), None)

    def back_since(self, ts: datetime) -> datetime | None:
        """The end of the latest away period that ended at or before `ts`."""
        ends = [p.end for p in self.away if p.end <= ts]
        return max(ends) if ends else None

    def away_during(self, start: datetime, end: datetime) -> bool:
        return any(p.start < end and start < p.end for p in self.away)

    def record(
        self,
        kind: ActivityKind | None,
        reading: Reading,
        used: Consumption | None,
        tz: ZoneInfo,
        config: ActivityConfig,
    ) -> None:
        """Remember what this reading tells about the household's activity."""
        ts = reading.ts
        if self.heard is None or ts > self.heard:
            self.heard = ts
        metered = _metered_kind(reading)
        if metered is not None:
            self.metered_since.setdefault(metered, ts)
            if ts < self.metered_since[metered]:
                self.metered_since[metered] = ts
            if metered not in self.meter_heard or ts > self.meter_heard[metered]:
                self.meter_heard[metered] = ts
        if used is not None and reading.metric is Metric.WATER_TOTAL_L and used.amount > 0:
            self.water.append((used.until, used.amount))
            while self.water and self.water[0][0] < used.until - WATER_MEMORY:
                del self.water[0]
        if kind is None:
            return
        if kind not in self.last or ts > self.last[kind]:
            self.last[kind] = ts
        self._follow_day_start(ts, routine_day(ts, tz, config.day_start))

    def _follow_day_start(self, ts: datetime, day: date) -> None:
        """Find the day's start: its first activity that more activity follows 10-45 min later.

        A visit to the toilet at five, then bed again until seven, is not the start of the day;
        getting up is (washing, the kettle and breakfast follow within the next half hour).
        """
        if day in self.first_activity:
            return
        if self.candidates_day != day:
            self.candidates_day = day
            self.candidates = []
        for earlier in self.candidates:
            if SUSTAINED_AFTER <= ts - earlier <= SUSTAINED_WITHIN:
                self.first_activity[day] = earlier
                self.candidates = []
                if len(self.first_activity) > DAYS_REMEMBERED:
                    del self.first_activity[min(self.first_activity)]
                return
        self.candidates = [c for c in self.candidates if ts - c <= SUSTAINED_WITHIN]
        if len(self.candidates) < MAX_CANDIDATES:
            self.candidates.append(ts)
            self.candidates.sort()

    def forget_away_before(self, ts: datetime) -> None:
        """Drop away periods that ended before `ts` (kept for the learning window only)."""
        self.away = [p for p in self.away if p.end >= ts]

    # JSON form, for the rule_state table.

    def to_json(self) -> dict[str, Any]:
        return {
            "last": {k.value: v.isoformat() for k, v in self.last.items()},
            "heard": self.heard.isoformat() if self.heard else None,
            "water": [[ts.isoformat(), round(litres, 3)] for ts, litres in self.water],
            "metered_since": {k.value: v.isoformat() for k, v in self.metered_since.items()},
            "meter_heard": {k.value: v.isoformat() for k, v in self.meter_heard.items()},
            "first_activity": {
                day.isoformat(): ts.isoformat() for day, ts in self.first_activity.items()
            },
            "candidates_day": self.candidates_day.isoformat() if self.candidates_day else None,
            "candidates": [ts.isoformat() for ts in self.candidates],
            "heavy_since": {d: ts.isoformat() for d, ts in self.heavy_since.items()},
            "alerted": dict(self.alerted),
            "false_alarms": {
                rule: [ts.isoformat() for ts in times] for rule, times in self.false_alarms.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ActivityLog:
        """The log from its JSON form; what cannot be read is left out, never fatal."""
        log = cls()
        # One object per distinct time: one reading sets `heard`, `last`, `meter_heard` and
        # more to the same time, and they share it in memory as they did before it was saved.
        times: dict[str, datetime] = {}

        def _ts(text: str) -> datetime:
            value = times.get(text)
            if value is None:
                value = times[text] = _parse_ts(text)
            return value

        try:
            log.last = {ActivityKind(k): _ts(v) for k, v in data.get("last", {}).items()}
            log.heard = _ts(data["heard"]) if data.get("heard") else None
            log.water = [(_ts(ts), float(litres)) for ts, litres in data.get("water", [])]
            log.metered_since = {
                ActivityKind(k): _ts(v) for k, v in data.get("metered_since", {}).items()
            }
            log.meter_heard = {
                ActivityKind(k): _ts(v) for k, v in data.get("meter_heard", {}).items()
            }
            log.first_activity = {
                date.fromisoformat(d): _ts(v) for d, v in data.get("first_activity", {}).items()
            }
            day = data.get("candidates_day")
            log.candidates_day = date.fromisoformat(day) if day else None
            log.candidates = [_ts(v) for v in data.get("candidates", [])]
            log.heavy_since = {d: _ts(v) for d, v in data.get("heavy_since", {}).items()}
            log.alerted = {str(k): str(v) for k, v in data.get("alerted", {}).items()}
            log.false_alarms = {
                str(rule): [_ts(v) for v in times]
                for rule, times in data.get("false_alarms", {}).items()
            }
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError):
            return cls()
        return log


def _parse_ts(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("naive time")
    return value


def _metered_kind(reading: Reading) -> ActivityKind | None:
    if reading.metric in (Metric.WATER_TOTAL_L, Metric.WATER_FLOW_LPM):
        return ActivityKind.WATER
    if reading.metric in (Metric.POWER_W, Metric.ENERGY_TOTAL_KWH):
        return ActivityKind.POWER
    return None


def routine_day(ts: datetime, tz: ZoneInfo, day_start: time) -> date:
    """The routine day `ts` belongs to: local days that begin at `day_start`, not midnight."""
    local = ts.astimezone(tz)
    shift = timedelta(hours=day_start.hour, minutes=day_start.minute)
    return (local - shift).date()


def at_local(day: date, minutes: float, tz: ZoneInfo, day_start: time) -> datetime:
    """The instant `minutes` after the start of routine day `day`."""
    start = datetime.combine(day, day_start, tzinfo=tz)
    return start + timedelta(minutes=minutes)


def within_hours(local: time, start: time, end: time) -> bool:
    """Whether the time of day `local` lies in [start, end), which may span midnight; equal
    bounds mean no hours at all."""
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end


def is_night(ts: datetime, tz: ZoneInfo, config: ActivityConfig) -> bool:
    return within_hours(ts.astimezone(tz).time(), config.night_start, config.night_end)


def waking_time(start: datetime, end: datetime, tz: ZoneInfo, config: ActivityConfig) -> timedelta:
    """How much of [start, end) lies outside the household's night hours."""
    total = end - start
    if total <= timedelta(0) or config.night_start == config.night_end:
        return max(total, timedelta(0))
    night = timedelta(0)
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date()
    while day <= last:
        begins = datetime.combine(day, config.night_start, tzinfo=tz)
        ends = datetime.combine(day, config.night_end, tzinfo=tz)
        if ends <= begins:
            ends = datetime.combine(day + timedelta(days=1), config.night_end, tzinfo=tz)
        overlap = min(ends, end) - max(begins, start)
        if overlap > timedelta(0):
            night += overlap
        day += timedelta(days=1)
    return total - night


@dataclass(frozen=True, slots=True)
class Expected:
    """A household's usual start of the day, learned from its own history."""

    day: date
    usual: datetime
    """The median first activity of comparable days."""
    late: datetime
    """The learned late bound: no activity by then is unusual for this household."""
    days: int
    """How many past days it was learned from."""
    spread_min: float
    """The interquartile range of those days' first activity, minutes."""
    weekday_aware: bool
    """Whether only days of the same type (weekday / weekend) were used."""


def expected_start(
    log: ActivityLog,
    day: date,
    tz: ZoneInfo,
    config: ActivityConfig,
    *,
    history_days: int,
    min_days: int,
    min_same_type_days: int,
    margin_min: float,
    spread_factor: float,
    max_late_min: float,
) -> Expected | None:
    """When the household usually starts `day`, and how late is unusual; None while learning.

    From the last `history_days` routine days before `day`, leaving out days with no activity
    and days touched by an away period, take each day's first activity (minutes after
    day_start). When at least `min_same_type_days` of them are of the same type as `day`
    (weekdays, or Saturday and Sunday), use only those. The usual start is their median; the
    late bound is the median plus the larger of `margin_min` and `spread_factor` times their
    interquartile range, and never more than `max_late_min` after the median.
    """
    samples: list[tuple[date, float]] = []
    for back in range(1, history_days + 1):
        past = day - timedelta(days=back)
        first = log.first_activity.get(past)
        if first is None:
            continue
        begins = at_local(past, 0, tz, config.day_start)
        if log.away_during(begins, begins + timedelta(days=1)):
            continue
        samples.append((past, (first - begins).total_seconds() / 60))
    if len(samples) < min_days:
        return None
    weekend = day.weekday() >= 5
    same = [m for d, m in samples if (d.weekday() >= 5) == weekend]
    aware = len(same) >= min_same_type_days
    minutes = same if aware else [m for _, m in samples]
    usual = statistics.median(minutes)
    if len(minutes) >= 4:
        q1, _, q3 = statistics.quantiles(minutes, n=4, method="inclusive")
        spread = q3 - q1
    else:
        spread = 0.0
    allowance = min(max(margin_min, spread_factor * spread), max_late_min)
    return Expected(
        day=day,
        usual=at_local(day, usual, tz, config.day_start),
        late=at_local(day, usual + allowance, tz, config.day_start),
        days=len(minutes),
        spread_min=round(spread, 1),
        weekday_aware=aware,
    )
