"""Inactivity rules (no_water_use, no_power_use, missed_routine), appliance_left_on, and the
engine's activity bookkeeping, driven through a RuleEngine with the default catalogue.

Named apart from tests/unit/simulators/test_routine.py: test directories are not packages, so
two test modules may not share a base name.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.models import (
    HOUSEHOLD_DEVICE,
    Finding,
    FindingAction,
    Metric,
    Reading,
    ReadingValue,
    Severity,
)
from gateway.rules.activity import ActivityLog, AwayPeriod
from gateway.rules.base import SPELL_KEY
from gateway.rules.catalogue import RulesConfig, build_rules
from gateway.rules.engine import RuleEngine

TZ = ZoneInfo("Asia/Shanghai")
MONDAY = date(2026, 11, 30)
STEP = timedelta(minutes=15)
OPEN, CLEAR = FindingAction.OPEN, FindingAction.CLEAR

Pattern = Callable[[datetime], float]
Event = tuple[datetime, Metric, ReadingValue, str]
"""(time, metric, value, device) of a reading sent on its own."""


def local(hour: int, minute: int = 0, *, day: int = 0) -> datetime:
    """`hour:minute` household time (Asia/Shanghai) `day` days after MONDAY, as UTC."""
    at = datetime.combine(MONDAY + timedelta(days=day), time(hour, minute), tzinfo=TZ)
    return at.astimezone(UTC)


def uses(amounts: dict[datetime, float]) -> Pattern:
    """Use in the intervals ending at the given times, nothing otherwise."""
    return lambda t: amounts.get(t, 0.0)


def steady(value: float) -> Pattern:
    return lambda t: value


def fridge(t: datetime) -> float:
    """A fridge's compressor: 100 W every other quarter hour, 5 W in between."""
    return 100.0 if (t.minute // 15) % 2 else 5.0


class Home:
    """A household driven through readings and ticks, keeping the alert book as the app does:
    an OPEN opens an alert (once), a resolving CLEAR closes it."""

    def __init__(self, engine: RuleEngine | None = None, household: str = "H001") -> None:
        self.engine = engine or RuleEngine(build_rules(RulesConfig()))
        self.household = household
        self.water_total = 1000.0
        self.found: list[Finding] = []

    def send(self, metric: Metric, value: ReadingValue, ts: datetime, device: str) -> None:
        reading = Reading(self.household, device, None, metric, value, None, ts)
        self.book(self.engine.on_reading(reading))

    def tick(self, now: datetime) -> None:
        self.book(self.engine.on_tick(now))

    def run(
        self,
        start: datetime,
        end: datetime,
        *,
        water: Pattern | None = None,
        power: Pattern | None = None,
        events: Sequence[Event] = (),
    ) -> None:
        """Every STEP from `start` to `end` inclusive: the `events` due by then, the water
        meter's total after `water(t)` litres in the interval ending at t, the plug's
        `power(t)` watts, then a tick."""
        pending = sorted(events, key=lambda event: event[0])
        t = start
        while t <= end:
            while pending and pending[0][0] <= t:
                at, metric, value, device = pending.pop(0)
                self.send(metric, value, at, device)
            if water is not None:
                self.water_total += water(t)
                self.send(Metric.WATER_TOTAL_L, self.water_total, t, "water-meter")
            if power is not None:
                self.send(Metric.POWER_W, power(t), t, "plug")
            self.tick(t)
            t += STEP

    def close(self, rule_id: str, device_id: str = HOUSEHOLD_DEVICE) -> None:
        """A person resolves the alert (after a phone call, say)."""
        self.engine.alert_closed(self.household, rule_id, device_id)

    def of(self, rule_id: str) -> list[tuple[datetime, FindingAction]]:
        return [(f.ts, f.action) for f in self.found if f.rule_id == rule_id]

    def last(self, rule_id: str) -> Finding:
        return [f for f in self.found if f.rule_id == rule_id][-1]

    def only(self, rule_id: str) -> Finding:
        (found,) = [f for f in self.found if f.rule_id == rule_id]
        return found

    def book(self, findings: list[Finding]) -> None:
        for f in findings:
            if f.household_id != self.household:
                continue
            if f.action is OPEN:
                state = self.engine.state(f.household_id)
                if state.alert_opened_at(f.rule_id, f.device_id) is None:
                    self.engine.alert_opened(
                        f.household_id, f.rule_id, f.device_id, f.ts, f.evidence
                    )
            elif f.resolves:
                self.engine.alert_closed(f.household_id, f.rule_id, f.device_id)
            self.found.append(f)


# no_water_use

NO_WATER = "no_water_use"


def test_less_than_10_litres_in_12_hours_opens_no_water_use():
    home = Home()
    # The meter reports from 06:00; 12 l are used in the quarter hour to 08:00, then nothing.
    home.run(local(6), local(22), water=uses({local(8): 12.0}))
    # At 19:45 the 12 l are still inside the window; from 20:00 they are not.
    assert home.of(NO_WATER) == [(local(20), OPEN)]
    alert = home.only(NO_WATER)
    assert (alert.device_id, alert.severity, alert.resolves) == (
        HOUSEHOLD_DEVICE,
        Severity.HIGH,
        False,
    )
    assert alert.evidence == {
        "litres": 0.0,
        "window_h": 12.0,
        "min_litres": 10.0,
        "last_water_use": local(8).isoformat(),
        SPELL_KEY: local(8).isoformat(),
    }
    assert alert.summary == "0.0 L of water used in 12 h"


def test_small_uses_that_add_up_to_less_than_10_litres_do_not_count():
    home = Home()
    # 2 l a quarter hour from 06:15 to 08:00 (16 l); the window holds 10 l until 18:45.
    morning = {local(6, 15) + i * STEP: 2.0 for i in range(8)}
    home.run(local(6), local(20), water=uses(morning))
    assert home.of(NO_WATER) == [(local(19), OPEN)]
    assert home.only(NO_WATER).evidence["litres"] == 8.0


def test_enough_water_in_the_window_keeps_no_water_use_quiet():
    home = Home()
    home.run(local(6), local(21, 45), water=uses({local(8): 6.0, local(12): 6.0}))
    assert home.of(NO_WATER) == [(local(20), OPEN)]  # 12:00's 6 l alone are not enough
    other = Home()
    other.run(local(6), local(21, 45), water=uses({local(8): 6.0, local(12): 6.0, local(15): 6.0}))
    assert other.of(NO_WATER) == []


def test_no_water_use_waits_for_the_meter_to_have_watched_a_whole_window():
    home = Home()
    home.run(local(9), local(21, 45), water=steady(0.0))  # a meter installed at 09:00
    assert home.of(NO_WATER) == [(local(21), OPEN)]
    assert home.only(NO_WATER).evidence[SPELL_KEY] == local(9).isoformat()


def test_a_meter_silent_for_the_whole_window_is_not_no_water_use():
    home = Home()
    home.run(local(6), local(8), water=uses({local(8): 12.0}))
    # The meter's battery dies after its 08:00 reading; ticks go on into the next day.
    t = local(8)
    while t <= local(12, day=1):
        home.tick(t)
        t += STEP
    assert home.of(NO_WATER) == []


def test_no_water_use_falling_due_at_night_waits_until_6():
    home = Home()
    home.run(local(6), local(12, day=1), water=uses({local(14): 12.0}))
    # Due at 02:00 (12 h after the last use), during the night hours 22:00-06:00.
    assert home.of(NO_WATER) == [(local(6, day=1), OPEN)]


def test_no_water_use_due_at_night_is_dropped_if_water_is_used_before_6():
    home = Home()
    home.run(local(6), local(12, day=1), water=uses({local(14): 12.0, local(5, day=1): 12.0}))
    assert home.of(NO_WATER) == []


def test_no_water_use_clears_when_the_window_reaches_10_litres_again():
    home = Home()
    home.run(local(6), local(20), water=uses({local(8): 12.0}))
    home.run(local(20, 15), local(22), water=uses({local(20, 30): 5.0, local(20, 45): 6.0}))
    assert home.of(NO_WATER) == [(local(20), OPEN), (local(20, 45), CLEAR)]
    clear = home.last(NO_WATER)
    assert (clear.resolves, clear.device_id) == (True, HOUSEHOLD_DEVICE)
    assert clear.evidence == {"litres": 11.0}
    assert home.engine.state("H001").alert_opened_at(NO_WATER, HOUSEHOLD_DEVICE) is None


def test_no_water_use_does_not_clear_on_a_window_wobbling_around_the_threshold():
    home = Home()
    home.run(local(6), local(18), water=uses({local(10): 9.0}))
    assert home.of(NO_WATER) == [(local(18), OPEN)]  # watched 12 h, only 9 l
    # 2 l takes the 12 h window to 11 l, but that is not a return to use: it stays open.
    home.run(local(18, 15), local(21, 45), water=uses({local(18, 30): 2.0}))
    assert home.of(NO_WATER) == [(local(18), OPEN)]


def test_a_closed_no_water_use_alert_does_not_reopen_for_the_same_spell():
    home = Home()
    home.run(local(6), local(20), water=uses({local(8): 12.0}))
    home.close(NO_WATER)
    # Still no water through the night and the morning: the same spell, not asked again...
    home.run(local(20, 15), local(7, 45, day=1), water=steady(0.0))
    assert home.of(NO_WATER) == [(local(20), OPEN)]
    # ...until water is used and a new spell begins.
    home.run(local(8, day=1), local(21, day=1), water=uses({local(8, day=1): 12.0}))
    assert home.of(NO_WATER) == [(local(20), OPEN), (local(20, day=1), OPEN)]
    spells = [f.evidence[SPELL_KEY] for f in home.found if f.rule_id == NO_WATER]
    assert spells == [local(8).isoformat(), local(8, day=1).isoformat()]


def test_an_open_no_water_use_alert_is_not_repeated_on_every_tick():
    home = Home()
    home.run(local(6), local(5, 45, day=1), water=steady(0.0))
    assert home.of(NO_WATER) == [(local(18), OPEN)]


def test_no_water_use_is_suspended_while_away_and_for_a_window_after_return():
    home = Home()
    home.engine.set_away("H001", [AwayPeriod(local(9), local(8, day=1))])
    home.run(local(6), local(22, day=1), water=uses({local(8): 12.0}))
    # Without the away period it would have opened at 20:00 on the first day.
    assert home.of(NO_WATER) == [(local(20, day=1), OPEN)]


def test_an_open_no_water_use_alert_clears_when_the_household_goes_away():
    home = Home()
    home.run(local(6), local(20), water=uses({local(8): 12.0}))
    back = local(12, day=2)
    home.engine.set_away("H001", [AwayPeriod(local(20, 10), back)])
    home.run(local(20, 15), local(12, day=1), water=steady(0.0))
    assert home.of(NO_WATER) == [(local(20), OPEN), (local(20, 15), CLEAR)]
    clear = home.last(NO_WATER)
    assert clear.resolves is True
    assert clear.evidence == {"away_until": back.isoformat()}


def test_a_spell_alerted_before_going_away_does_not_silence_the_alert_after_return():
    home = Home()
    home.run(local(6), local(20), water=uses({local(8): 12.0}))
    home.engine.set_away("H001", [AwayPeriod(local(21), local(8, day=2))])
    # Back on Wednesday at 08:00 and no water used since: as for a household that was not
    # alerted before it left, no_water_use should open at 20:00 on Wednesday.
    home.run(local(20, 15), local(21, day=2), water=steady(0.0))
    assert home.of(NO_WATER) == [(local(20), OPEN), (local(21), CLEAR), (local(20, day=2), OPEN)]


def test_no_water_use_window_and_litres_are_configurable():
    config = RulesConfig.model_validate({"no_water_use": {"window_h": 4, "min_litres": 3}})
    home = Home(RuleEngine(build_rules(config)))
    home.run(local(6), local(14), water=uses({local(8): 4.0, local(9): 2.0}))
    # 4 h after 08:00 only 09:00's 2 l are left in the window.
    assert home.of(NO_WATER) == [(local(12), OPEN)]


# no_power_use

NO_POWER = "no_power_use"


def kettle_then_fridge(t: datetime) -> float:
    return 1200.0 if t == local(7) else fridge(t)


def test_standby_for_12_hours_opens_no_power_use_a_fridge_is_not_use():
    home = Home()
    home.run(local(6), local(21), power=kettle_then_fridge)
    assert home.of(NO_POWER) == [(local(19), OPEN)]
    alert = home.only(NO_POWER)
    assert alert.device_id == HOUSEHOLD_DEVICE
    assert alert.evidence == {
        "window_h": 12.0,
        "standby_w": 200.0,
        "last_power_use": local(7).isoformat(),
        SPELL_KEY: local(7).isoformat(),
    }
    assert alert.summary == "electricity at standby for 12 h"


def test_no_power_use_waits_for_a_meter_that_watched_the_whole_window():
    home = Home()
    home.run(local(8), local(21), power=fridge)
    assert home.of(NO_POWER) == [(local(20), OPEN)]
    assert home.only(NO_POWER).evidence["last_power_use"] is None
    assert home.only(NO_POWER).evidence[SPELL_KEY] == local(8).isoformat()


def test_no_power_use_clears_on_use_above_standby():
    home = Home()
    home.run(local(6), local(19), power=kettle_then_fridge)
    home.run(local(19, 15), local(21), power=uses({local(19, 15): 150.0, local(19, 30): 800.0}))
    assert home.of(NO_POWER) == [(local(19), OPEN), (local(19, 30), CLEAR)]
    clear = home.last(NO_POWER)
    assert (clear.resolves, clear.evidence) == (True, {"device_id": "plug"})


def test_night_hours_do_not_count_towards_no_power_use():
    home = Home()
    home.run(local(6), local(12, day=1), power=lambda t: 1200.0 if t == local(13) else 5.0)
    # 13:00-22:00 and 06:00-09:00 are the twelve waking hours since the kettle.
    assert home.of(NO_POWER) == [(local(9, day=1), OPEN)]
    assert home.only(NO_POWER).evidence["last_power_use"] == local(13).isoformat()


def test_other_signs_of_life_hold_no_power_use():
    home = Home()
    seen = [(local(9), Metric.PRESENCE, True, "radar")]
    home.run(local(6), local(21, 30), power=kettle_then_fridge, events=seen)
    # Standby since 07:00, but someone moved about at 09:00: twelve waking hours from then.
    assert home.of(NO_POWER) == [(local(21), OPEN)]


def inactivity(home: Home) -> list[tuple[datetime, str, FindingAction]]:
    rules = (NO_WATER, NO_POWER, "missed_routine")
    return [(f.ts, f.rule_id, f.action) for f in home.found if f.rule_id in rules]


def test_one_inactivity_alert_at_a_time_per_household():
    home = Home()
    # Water at 06:30 (no_water_use due at 18:30), the kettle at 07:00 (no_power_use due 19:00).
    home.run(local(6), local(19, 30), water=uses({local(6, 30): 12.0}), power=kettle_then_fridge)
    assert inactivity(home) == [(local(18, 30), NO_WATER, OPEN)]
    home.close(NO_WATER)
    home.run(local(19, 45), local(21), water=steady(0.0), power=fridge)
    assert inactivity(home) == [(local(18, 30), NO_WATER, OPEN), (local(19, 45), NO_POWER, OPEN)]


def test_one_inactivity_alert_even_when_two_fall_due_on_the_same_tick():
    home = Home()
    # Water meter and plug both quiet from 06:00: both rules are due at 18:00.
    home.run(local(6), local(19), water=steady(0.0), power=fridge)
    assert [rule for _, rule, _ in inactivity(home)] == [NO_WATER]


def test_a_higher_standby_counts_a_bigger_fridge_as_standby():
    config = RulesConfig.model_validate({"activity": {"standby_w": 300}})
    engine = RuleEngine(build_rules(config), activity=config.activity)
    home = Home(engine)
    home.run(local(6), local(21), power=lambda t: 250.0 if t.minute == 0 else 5.0)
    assert home.of(NO_POWER) == [(local(18), OPEN)]
    assert home.only(NO_POWER).evidence["standby_w"] == 300.0
    default = Home()
    default.run(local(6), local(21), power=lambda t: 250.0 if t.minute == 0 else 5.0)
    assert default.of(NO_POWER) == []


# missed_routine

MISSED = "missed_routine"


def learned_home(days: int = 14, first: tuple[int, int] = (6, 30)) -> Home:
    """A home whose elder was up at `first` each of the `days` days before MONDAY (moving
    about, then the door a quarter of an hour later), last seen at 21:00 on Sunday evening."""
    home = Home()
    for back in range(days, 0, -1):
        up = local(*first, day=-back)
        home.send(Metric.PRESENCE, True, up, "radar")
        home.send(Metric.DOOR_OPEN, True, up + STEP, "door")
        home.send(Metric.PRESENCE, True, local(21, day=-back), "radar")
    return home


def quiet_morning(home: Home, until: datetime | None = None, events: Sequence[Event] = ()) -> None:
    """Monday from midnight to `until` (noon): the water meter reports every quarter hour,
    nothing is used."""
    home.run(local(0), until or local(12), water=steady(0.0), events=events)


def test_missed_routine_opens_at_the_learned_late_bound():
    home = learned_home()
    quiet_morning(home)
    assert home.of(MISSED) == [(local(7, 30), OPEN)]
    alert = home.only(MISSED)
    assert (alert.device_id, alert.severity) == (HOUSEHOLD_DEVICE, Severity.HIGH)
    assert alert.evidence == {
        "usual_start": local(6, 30).astimezone(TZ).isoformat(),
        "late_bound": local(7, 30).astimezone(TZ).isoformat(),
        "learned_days": 10,  # weekdays only: MONDAY is one
        "spread_min": 0.0,
        "weekday_aware": True,
        "last_activity": local(21, day=-1).isoformat(),
        SPELL_KEY: local(21, day=-1).isoformat(),
    }
    assert alert.summary == "no activity by 07:30 (usually from about 06:30)"


@pytest.mark.parametrize(("days", "expected"), [(6, []), (7, [(local(7, 30), OPEN)])])
def test_missed_routine_learns_for_min_days_before_alerting(
    days: int, expected: list[tuple[datetime, FindingAction]]
):
    home = learned_home(days)
    quiet_morning(home)
    assert home.of(MISSED) == expected


def test_a_household_with_no_history_is_never_missed_routine():
    home = Home()
    quiet_morning(home, until=local(23, 45))
    assert home.of(MISSED) == []


@pytest.mark.parametrize(
    ("metric", "value", "at"),
    [
        (Metric.PRESENCE, True, local(7, 15)),
        (Metric.DOOR_OPEN, True, local(5, 45)),  # early, but within an hour of 06:30
        (Metric.BUTTON, "single", local(7, 29)),
        (Metric.HEART_RATE_BPM, 70.0, local(6)),
        (Metric.POWER_W, 1200.0, local(7)),
    ],
)
def test_activity_before_the_late_bound_means_the_day_has_begun(
    metric: Metric, value: ReadingValue, at: datetime
):
    home = learned_home()
    quiet_morning(home, events=[(at, metric, value, "somewhere")])
    assert home.of(MISSED) == []


def test_water_use_before_the_late_bound_means_the_day_has_begun():
    home = learned_home()
    home.run(local(0), local(12), water=uses({local(7): 3.0}))
    assert home.of(MISSED) == []


@pytest.mark.parametrize("visit", [local(3), local(4, 30)])
def test_a_night_toilet_visit_is_not_the_mornings_activity(visit: datetime):
    home = learned_home()
    home.run(local(0), local(12), water=uses({visit: 6.0}))
    assert home.of(MISSED) == [(local(7, 30), OPEN)]
    assert home.only(MISSED).evidence["last_activity"] == visit.isoformat()


def test_missed_routine_clears_on_the_next_activity():
    home = learned_home()
    quiet_morning(home, events=[(local(9), Metric.PRESENCE, True, "radar")])
    assert home.of(MISSED) == [(local(7, 30), OPEN), (local(9), CLEAR)]
    clear = home.last(MISSED)
    assert clear.resolves is True
    assert clear.evidence == {"activity": "motion", "device_id": "radar"}


def test_a_closed_missed_routine_alert_is_not_reopened_without_activity():
    home = learned_home()
    quiet_morning(home, until=local(8))
    home.close(MISSED)
    home.run(local(8, 15), local(12), water=steady(0.0))
    assert home.of(MISSED) == [(local(7, 30), OPEN)]


def test_missed_routine_needs_something_heard_from_the_home():
    # A hub that is down is device_offline's business: with nothing heard, no missed_routine.
    home = learned_home()
    t = local(0)
    while t <= local(12):
        home.tick(t)
        t += STEP
    assert home.of(MISSED) == []


def test_missed_routine_is_suspended_while_away():
    home = learned_home()
    home.engine.set_away("H001", [AwayPeriod(local(18, day=-1), local(18))])
    quiet_morning(home)
    assert home.of(MISSED) == []


def test_missed_routine_is_suspended_on_the_morning_of_a_return():
    home = learned_home()
    home.engine.set_away("H001", [AwayPeriod(local(10, day=-1), local(7))])
    quiet_morning(home)
    assert home.of(MISSED) == []


def test_days_away_are_left_out_of_learning():
    home = learned_home()
    # Away on Wednesday and Thursday of last week (both weekdays, like MONDAY).
    home.engine.set_away("H001", [AwayPeriod(local(9, day=-5), local(20, day=-4))])
    quiet_morning(home)
    assert home.of(MISSED) == [(local(7, 30), OPEN)]
    assert home.only(MISSED).evidence["learned_days"] == 8


def test_an_open_missed_routine_alert_clears_when_the_household_goes_away():
    home = learned_home()
    quiet_morning(home, until=local(7, 30))
    home.engine.set_away("H001", [AwayPeriod(local(7, 40), local(18, day=2))])
    home.run(local(7, 45), local(12), water=steady(0.0))
    assert home.of(MISSED) == [(local(7, 30), OPEN), (local(7, 45), CLEAR)]


def test_the_late_bound_follows_the_spread_of_the_households_mornings():
    home = Home()
    # Weekdays between 05:30 and 08:00: a wide spread widens the allowance.
    starts = [(5, 30), (6, 0), (6, 30), (7, 0), (7, 30), (8, 0), (6, 30), (7, 0), (6, 0), (7, 30)]
    weekdays = [back for back in range(1, 15) if (MONDAY - timedelta(days=back)).weekday() < 5]
    for back, (hour, minute) in zip(weekdays, starts, strict=True):
        up = local(hour, minute, day=-back)
        home.send(Metric.PRESENCE, True, up, "radar")
        home.send(Metric.DOOR_OPEN, True, up + STEP, "door")
    home.send(Metric.PRESENCE, True, local(21, day=-1), "radar")
    quiet_morning(home)
    (opened,) = home.of(MISSED)
    alert = home.only(MISSED)
    # Median 06:45; quartiles 06:07:30 and 07:22:30, 1.5 x 75 min = 112.5 min later: 08:37:30.
    assert alert.evidence["usual_start"] == local(6, 45).astimezone(TZ).isoformat()
    assert alert.evidence["spread_min"] == 75.0
    late = local(8, 37) + timedelta(seconds=30)
    assert alert.evidence["late_bound"] == late.astimezone(TZ).isoformat()
    assert opened == (local(8, 45), OPEN)  # the first tick at or after the bound


# appliance_left_on

LEFT_ON = "appliance_left_on"


def test_a_heavy_load_for_over_2_hours_with_nobody_active_opens_on_the_device():
    home = Home()
    home.run(local(10), local(14), power=steady(2000.0))
    # 12:00 is exactly two hours, not more.
    assert home.of(LEFT_ON) == [(local(12, 15), OPEN)]
    alert = home.only(LEFT_ON)
    assert (alert.device_id, alert.severity) == ("plug", Severity.MEDIUM)
    assert alert.evidence == {
        "power_w": 2000.0,
        "heavy_w": 1500.0,
        "on_since": local(10).isoformat(),
        "last_other_activity": None,
        SPELL_KEY: local(10).isoformat(),
    }


@pytest.mark.parametrize(
    ("water", "expected"),
    [
        (uses({local(11): 5.0}), [(local(13), OPEN)]),  # two hours after the last water use
        (steady(1.0), []),  # someone is about all the time
        (uses({local(11): 0.2}), [(local(12, 15), OPEN)]),  # a drip is nobody
    ],
)
def test_other_activity_in_the_last_2_hours_holds_appliance_left_on(
    water: Pattern, expected: list[tuple[datetime, FindingAction]]
):
    home = Home()
    home.run(local(10), local(14), water=water, power=steady(2000.0))
    assert home.of(LEFT_ON) == expected


def test_appliance_left_on_clears_when_the_load_drops_below_heavy_w():
    home = Home()
    home.run(local(10), local(12, 15), power=steady(2000.0))
    home.run(local(12, 30), local(12, 30), power=steady(1800.0))  # lower, still heavy
    home.run(local(12, 45), local(16), power=steady(1400.0))
    assert home.of(LEFT_ON) == [(local(12, 15), OPEN), (local(12, 45), CLEAR)]
    assert home.last(LEFT_ON).resolves is True
    assert home.engine.state("H001").log.heavy_since == {}


def test_appliance_left_on_alerts_once_per_run_of_load():
    home = Home()
    home.run(local(10), local(12, 30), power=steady(2000.0))
    home.close(LEFT_ON, "plug")
    home.run(local(12, 45), local(16), power=steady(2000.0))
    assert home.of(LEFT_ON) == [(local(12, 15), OPEN)]
    assert home.engine.state("H001").log.alerted[f"{LEFT_ON}/plug"] == local(10).isoformat()
    # Off, then on again: a new run, alerted again after two hours.
    home.run(local(16, 15), local(16, 15), power=steady(0.0))
    home.run(local(16, 30), local(19), power=steady(2000.0))
    assert home.of(LEFT_ON) == [(local(12, 15), OPEN), (local(18, 45), OPEN)]


def test_appliance_left_on_is_not_suspended_while_away():
    home = Home()
    home.engine.set_away("H001", [AwayPeriod(local(8), local(20, day=3))])
    home.run(local(10), local(13), power=steady(2000.0))
    assert home.of(LEFT_ON) == [(local(12, 15), OPEN)]


def test_a_households_own_heavy_w_sets_its_threshold():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.configure(
        "H002",
        rules=build_rules(RulesConfig.model_validate({"appliance_left_on": {"heavy_w": 3000}})),
    )
    first, second = Home(engine, "H001"), Home(engine, "H002")
    t = local(10)
    while t <= local(14):
        first.send(Metric.POWER_W, 2000.0, t, "plug")
        second.send(Metric.POWER_W, 2000.0, t, "plug")
        found = engine.on_tick(t)  # one tick for the engine; each Home books its household's
        first.book(found)
        second.book(found)
        t += STEP
    assert first.of(LEFT_ON) == [(local(12, 15), OPEN)]
    assert second.of(LEFT_ON) == []
    assert engine.state("H002").log.heavy_since == {}
    hotter = Home(engine, "H002")
    hotter.run(local(15), local(18), power=steady(3500.0))
    assert hotter.of(LEFT_ON) == [(local(17, 15), OPEN)]


# the engine's activity bookkeeping


def test_take_changed_returns_each_household_whose_log_changed_once():
    engine = RuleEngine(build_rules(RulesConfig()))
    assert engine.take_changed() == []
    engine.on_reading(Reading("H002", "radar", None, Metric.PRESENCE, True, None, local(8)))
    engine.on_reading(Reading("H001", "radar", None, Metric.PRESENCE, True, None, local(8)))
    changed = engine.take_changed()
    assert [h for h, _ in changed] == ["H001", "H002"]
    assert all(log is engine.state(h).log for h, log in changed)
    assert engine.take_changed() == []
    engine.on_tick(local(9))  # nothing opened: nothing to save
    assert engine.take_changed() == []


def test_a_tick_that_opens_an_inactivity_alert_marks_the_log_changed():
    home = Home()
    home.run(local(6), local(19, 45), water=uses({local(8): 12.0}))
    home.engine.take_changed()
    home.tick(local(20))
    assert home.of(NO_WATER) == [(local(20), OPEN)]
    assert home.engine.take_changed() == [("H001", home.engine.state("H001").log)]


def test_the_spell_an_open_finding_names_is_remembered():
    home = Home()
    home.run(local(6), local(20), water=uses({local(8): 12.0}))
    spell = home.only(NO_WATER).evidence[SPELL_KEY]
    assert home.engine.state("H001").log.alerted == {NO_WATER: spell}


def test_restore_log_keeps_the_away_periods():
    engine = RuleEngine(build_rules(RulesConfig()))
    away = AwayPeriod(local(9), local(18, day=2))
    engine.set_away("H001", [away])
    saved = ActivityLog(heard=local(8), alerted={NO_WATER: local(7).isoformat()})
    engine.restore_log("H001", saved)
    log = engine.state("H001").log
    assert log is saved
    assert log.away == [away]
    assert log.alerted == {NO_WATER: local(7).isoformat()}


def test_away_periods_are_sorted_and_replace_the_old_ones():
    engine = RuleEngine([])
    later, earlier = AwayPeriod(local(9, day=5), local(9, day=6)), AwayPeriod(local(9), local(10))
    engine.set_away("H001", [AwayPeriod(local(1), local(2))])
    engine.set_away("H001", [later, earlier])
    assert engine.state("H001").log.away == [earlier, later]


@pytest.mark.parametrize(("keep_alerted", "expected"), [(True, []), (False, [(local(21), OPEN)])])
def test_one_alert_per_spell_survives_a_restart(
    keep_alerted: bool, expected: list[tuple[datetime, FindingAction]]
):
    home = Home()
    home.run(local(6), local(20), water=uses({local(8): 12.0}))
    home.close(NO_WATER)
    saved = json.loads(json.dumps(home.engine.state("H001").log.to_json()))
    if not keep_alerted:
        saved["alerted"] = {}
    restarted = Home()
    restarted.engine.restore_log("H001", ActivityLog.from_json(saved))
    restarted.water_total = home.water_total
    restarted.run(local(21), local(21, 45), water=steady(0.0))
    assert restarted.of(NO_WATER) == expected


def test_a_household_in_another_zone_has_its_own_night():
    engine = RuleEngine(build_rules(RulesConfig()))
    engine.configure("H001", tz=ZoneInfo("Europe/London"))
    london = Home(engine)
    # Due at midnight Shanghai time, which is 16:00 in London: no waiting for the morning.
    london.run(local(6), local(7, day=1), water=uses({local(12): 12.0}))
    assert london.of(NO_WATER) == [(local(0, day=1), OPEN)]
    shanghai = Home()
    shanghai.run(local(6), local(7, day=1), water=uses({local(12): 12.0}))
    assert shanghai.of(NO_WATER) == [(local(6, day=1), OPEN)]
