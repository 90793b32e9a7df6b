"""The activity model: what counts as a sign of life, routine days, night, the log, learning."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from gateway.models import Metric, Reading, ReadingValue
from gateway.rules.activity import (
    DAYS_REMEMBERED,
    SUSTAINED_AFTER,
    SUSTAINED_WITHIN,
    ActivityConfig,
    ActivityKind,
    ActivityLog,
    AwayPeriod,
    Expected,
    at_local,
    classify,
    expected_start,
    is_night,
    routine_day,
    waking_time,
)
from gateway.rules.counters import Consumption
from tests.unit.rules.helpers import T0, reading

TZ = ZoneInfo("Asia/Shanghai")
CONFIG = ActivityConfig()
MONDAY = date(2026, 11, 30)
SATURDAY = date(2026, 12, 5)


def local(hour: int, minute: int = 0, *, day: date = MONDAY, tz: ZoneInfo = TZ) -> datetime:
    """`hour:minute` local time on `day`, as UTC (how readings carry it)."""
    return datetime.combine(day, time(hour, minute), tzinfo=tz).astimezone(UTC)


def used(metric: Metric, amount: float, minutes: float = 15) -> Consumption:
    """Use of `amount` over the `minutes` before T0."""
    return Consumption(metric, amount, T0 - timedelta(minutes=minutes), T0)


def at(metric: Metric, value: ReadingValue, ts: datetime, device: str = "dev-1") -> Reading:
    return Reading("H001", device, None, metric, value, None, ts)


# classify


@pytest.mark.parametrize(
    ("amount", "expected"),
    [(0.5, ActivityKind.WATER), (12.0, ActivityKind.WATER), (0.4, None), (0.0, None)],
)
def test_water_used_from_min_water_l_is_activity_a_drip_is_not(
    amount: float, expected: ActivityKind | None
):
    meter = reading(Metric.WATER_TOTAL_L, 1012.0)
    used_water = used(Metric.WATER_TOTAL_L, amount)
    assert classify(meter, used_water, CONFIG, reports_power=False) is expected


def test_a_meter_total_without_known_consumption_is_not_activity():
    # The first reading, or a new baseline after a reset.
    assert (
        classify(reading(Metric.WATER_TOTAL_L, 1012.0), None, CONFIG, reports_power=False) is None
    )
    assert (
        classify(reading(Metric.ENERGY_TOTAL_KWH, 5321.0), None, CONFIG, reports_power=False)
        is None
    )


def test_min_water_l_is_configurable():
    config = ActivityConfig(min_water_l=2.0)
    meter = reading(Metric.WATER_TOTAL_L, 1012.0)
    assert classify(meter, used(Metric.WATER_TOTAL_L, 1.5), config, reports_power=False) is None
    assert (
        classify(meter, used(Metric.WATER_TOTAL_L, 2.0), config, reports_power=False)
        is ActivityKind.WATER
    )


@pytest.mark.parametrize(("lpm", "expected"), [(3.5, ActivityKind.WATER), (0.0, None)])
def test_water_flowing_is_activity(lpm: float, expected: ActivityKind | None):
    assert classify(reading(Metric.WATER_FLOW_LPM, lpm), None, CONFIG, reports_power=False) is (
        expected
    )


@pytest.mark.parametrize(
    ("watts", "expected"),
    [
        (1200.0, ActivityKind.POWER),
        (200.5, ActivityKind.POWER),
        (200.0, None),  # standby_w itself is still standby
        (100.0, None),  # a fridge's compressor running
        (0.0, None),
    ],
)
def test_power_above_standby_is_activity(watts: float, expected: ActivityKind | None):
    assert classify(reading(Metric.POWER_W, watts), None, CONFIG, reports_power=True) is expected


def test_standby_w_is_configurable():
    config = ActivityConfig(standby_w=50.0)
    assert (
        classify(reading(Metric.POWER_W, 100.0), None, config, reports_power=True)
        is ActivityKind.POWER
    )


@pytest.mark.parametrize(
    ("kwh", "minutes", "expected"),
    [
        (0.1, 15, ActivityKind.POWER),  # 400 W on average
        (0.04, 15, None),  # 160 W: standby and a fridge
        (0.05, 15, None),  # exactly 200 W: standby
        (0.3, 60, ActivityKind.POWER),  # 300 W over an hour
        (0.15, 60, None),  # 150 W over an hour
    ],
)
def test_an_energy_total_counts_by_its_average_power(
    kwh: float, minutes: float, expected: ActivityKind | None
):
    meter = reading(Metric.ENERGY_TOTAL_KWH, 5321.0)
    energy = used(Metric.ENERGY_TOTAL_KWH, kwh, minutes)
    assert classify(meter, energy, CONFIG, reports_power=False) is expected


def test_an_energy_total_is_ignored_when_the_device_also_reports_power():
    # Its instantaneous power already says whether something is on.
    meter = reading(Metric.ENERGY_TOTAL_KWH, 5321.0)
    assert classify(meter, used(Metric.ENERGY_TOTAL_KWH, 1.0), CONFIG, reports_power=True) is None


@pytest.mark.parametrize(
    ("metric", "value", "expected"),
    [
        (Metric.PRESENCE, True, ActivityKind.MOTION),
        (Metric.PRESENCE, False, None),  # an empty room watched by a radar
        (Metric.DOOR_OPEN, True, ActivityKind.DOOR),
        (Metric.DOOR_OPEN, False, None),
        (Metric.BUTTON, "single", ActivityKind.BUTTON),
        (Metric.BUTTON, "sos", ActivityKind.BUTTON),
        (Metric.HEART_RATE_BPM, 72.0, ActivityKind.VITALS),
        (Metric.SPO2_PCT, 97.0, ActivityKind.VITALS),
        (Metric.BP_SYSTOLIC_MMHG, 130.0, ActivityKind.VITALS),
        (Metric.BP_DIASTOLIC_MMHG, 80.0, ActivityKind.VITALS),
        (Metric.BODY_TEMP_C, 36.6, ActivityKind.VITALS),
        (Metric.BATTERY_PCT, 80.0, None),
        (Metric.BATTERY_LOW, True, None),
        (Metric.ONLINE, True, None),
        (Metric.LINK_QUALITY, 120.0, None),
        (Metric.SMOKE, False, None),
    ],
)
def test_what_each_reading_says_about_activity(
    metric: Metric, value: ReadingValue, expected: ActivityKind | None
):
    assert classify(reading(metric, value), None, CONFIG, reports_power=False) is expected


# routine days and night


@pytest.mark.parametrize(
    ("ts", "day"),
    [
        (local(3, 59), MONDAY - timedelta(days=1)),  # a night-time toilet visit: still Sunday
        (local(4, 0), MONDAY),
        (local(23, 59), MONDAY),
        (local(0, 30, day=MONDAY + timedelta(days=1)), MONDAY),
    ],
)
def test_a_routine_day_starts_at_day_start_local_time(ts: datetime, day: date):
    assert routine_day(ts, TZ, time(4, 0)) == day


def test_a_routine_day_is_local_to_the_household():
    # 20:30 UTC on Sunday is 04:30 Monday in Shanghai, still 20:30 Sunday in London.
    ts = datetime(2026, 11, 29, 20, 30, tzinfo=UTC)
    assert routine_day(ts, TZ, time(4, 0)) == MONDAY
    assert routine_day(ts, ZoneInfo("Europe/London"), time(4, 0)) == date(2026, 11, 29)


def test_day_start_is_configurable():
    assert routine_day(local(5, 30), TZ, time(6, 0)) == MONDAY - timedelta(days=1)
    assert routine_day(local(5, 30), TZ, time(0, 0)) == MONDAY


def test_at_local_is_minutes_after_the_start_of_a_routine_day():
    assert at_local(MONDAY, 150, TZ, time(4, 0)) == local(6, 30)
    assert at_local(MONDAY, 24 * 60 - 1, TZ, time(4, 0)) == local(3, 59, day=date(2026, 12, 1))


@pytest.mark.parametrize(
    ("hour", "minute", "night"),
    [
        (14, 0, False),
        (21, 59, False),
        (22, 0, True),
        (23, 30, True),
        (0, 0, True),
        (3, 0, True),
        (5, 59, True),
        (6, 0, False),
    ],
)
def test_night_runs_across_midnight(hour: int, minute: int, night: bool):
    assert is_night(local(hour, minute), TZ, CONFIG) is night


@pytest.mark.parametrize(("hour", "night"), [(12, False), (13, True), (14, True), (15, False)])
def test_night_hours_within_one_day(hour: int, night: bool):
    config = ActivityConfig(night_start=time(13, 0), night_end=time(15, 0))
    assert is_night(local(hour), TZ, config) is night


@pytest.mark.parametrize("hour", [0, 3, 22, 23])
def test_equal_night_times_mean_no_night(hour: int):
    config = ActivityConfig(night_start=time(22, 0), night_end=time(22, 0))
    assert is_night(local(hour), TZ, config) is False


def test_night_is_the_households_local_night():
    # T0 is 14:00 in Shanghai and 01:00 in New York.
    assert is_night(T0, TZ, CONFIG) is False
    assert is_night(T0, ZoneInfo("America/New_York"), CONFIG) is True


@pytest.mark.parametrize(
    ("start", "end", "hours"),
    [
        (local(8), local(20), 12),  # all day
        (local(13), local(9, day=MONDAY + timedelta(days=1)), 12),  # 20 h less 8 night hours
        (local(23), local(7, day=MONDAY + timedelta(days=1)), 1),  # only 06:00-07:00 counts
        (local(2), local(8), 2),  # from inside the night that began on Sunday
        (local(22), local(6, day=MONDAY + timedelta(days=1)), 0),
        (local(8), local(8, day=MONDAY + timedelta(days=2)), 32),  # two nights
        (local(20), local(8), 0),  # backwards
    ],
)
def test_waking_time_leaves_out_the_night_hours(start: datetime, end: datetime, hours: float):
    assert waking_time(start, end, TZ, CONFIG) == timedelta(hours=hours)


def test_waking_time_without_night_hours_is_all_the_time():
    config = ActivityConfig(night_start=time(22, 0), night_end=time(22, 0))
    end = local(9, day=MONDAY + timedelta(days=1))
    assert waking_time(local(13), end, TZ, config) == timedelta(hours=20)


def test_waking_time_follows_the_households_zone():
    # 14:00-20:00 UTC is the night in Shanghai (22:00-04:00), the afternoon in London.
    start, end = datetime(2026, 11, 30, 14, tzinfo=UTC), datetime(2026, 11, 30, 20, tzinfo=UTC)
    assert waking_time(start, end, TZ, CONFIG) == timedelta(0)
    assert waking_time(start, end, ZoneInfo("Europe/London"), CONFIG) == timedelta(hours=6)


def test_activity_times_of_day_are_local_times():
    with pytest.raises(ValueError, match="day_start"):
        ActivityConfig(day_start=time(4, 0, tzinfo=UTC))


# the log


def record(
    log: ActivityLog,
    metric: Metric,
    value: ReadingValue,
    ts: datetime,
    *,
    used_l: float | None = None,
    device: str = "dev-1",
) -> None:
    """Record one reading as the engine does (classify, then record)."""
    consumption = (
        Consumption(metric, used_l, ts - timedelta(minutes=15), ts) if used_l is not None else None
    )
    r = at(metric, value, ts, device)
    log.record(classify(r, consumption, CONFIG, reports_power=False), r, consumption, TZ, CONFIG)


def test_the_log_keeps_the_latest_of_each_kind_even_from_late_readings():
    log = ActivityLog()
    record(log, Metric.PRESENCE, True, local(9))
    record(log, Metric.PRESENCE, True, local(8))  # arrives late
    record(log, Metric.DOOR_OPEN, True, local(7))
    assert log.last == {ActivityKind.MOTION: local(9), ActivityKind.DOOR: local(7)}
    assert log.last_activity() == local(9)
    assert log.last_activity(besides=frozenset({ActivityKind.MOTION})) == local(7)


def test_readings_that_are_no_activity_are_heard_but_not_activity():
    log = ActivityLog()
    record(log, Metric.PRESENCE, False, local(7))
    record(log, Metric.BATTERY_PCT, 80.0, local(7, 20))
    assert (log.heard, log.last, log.first_activity) == (local(7, 20), {}, {})
    record(log, Metric.PRESENCE, True, local(8))
    record(log, Metric.PRESENCE, False, local(10))
    record(log, Metric.BATTERY_PCT, 80.0, local(11))
    record(log, Metric.ONLINE, True, local(9))  # older than what was heard already
    assert log.heard == local(11)
    assert log.last == {ActivityKind.MOTION: local(8)}


def test_meters_are_followed_from_their_first_to_their_latest_reading():
    log = ActivityLog()
    record(log, Metric.WATER_TOTAL_L, 1000.0, local(8))
    record(log, Metric.WATER_TOTAL_L, 1000.0, local(9), used_l=0.0)
    record(log, Metric.WATER_FLOW_LPM, 0.0, local(7), device="flow")  # late, earlier
    record(log, Metric.ENERGY_TOTAL_KWH, 5321.0, local(10), device="house")
    record(log, Metric.POWER_W, 5.0, local(11), device="plug")
    record(log, Metric.PRESENCE, True, local(6), device="radar")
    assert log.metered_since == {ActivityKind.WATER: local(7), ActivityKind.POWER: local(10)}
    assert log.meter_heard == {ActivityKind.WATER: local(9), ActivityKind.POWER: local(11)}


def test_water_used_is_kept_per_interval_and_summed_over_a_window():
    log = ActivityLog()
    record(log, Metric.WATER_TOTAL_L, 1003.0, local(8), used_l=3.0)
    record(log, Metric.WATER_TOTAL_L, 1003.0, local(9), used_l=0.0)  # no use: not kept
    record(log, Metric.WATER_TOTAL_L, 1010.0, local(10), used_l=7.0)
    record(log, Metric.WATER_TOTAL_L, 1010.2, local(11), used_l=0.2)  # a drip: kept, no activity
    record(log, Metric.ENERGY_TOTAL_KWH, 5321.0, local(11), used_l=2.0, device="house")
    assert list(log.water) == [(local(8), 3.0), (local(10), 7.0), (local(11), 0.2)]
    assert log.water_used(local(8)) == pytest.approx(7.2)  # the interval ending at 08:00 is out
    assert log.water_used(local(7, 59)) == pytest.approx(10.2)
    assert log.last[ActivityKind.WATER] == local(10)


def test_water_use_older_than_48_hours_is_forgotten():
    log = ActivityLog()
    start = local(8)
    record(log, Metric.WATER_TOTAL_L, 1005.0, start, used_l=5.0)
    record(log, Metric.WATER_TOTAL_L, 1010.0, start + timedelta(hours=1), used_l=5.0)
    record(log, Metric.WATER_TOTAL_L, 1015.0, start + timedelta(hours=47), used_l=5.0)
    assert len(log.water) == 3
    record(log, Metric.WATER_TOTAL_L, 1020.0, start + timedelta(hours=49), used_l=5.0)
    # 48 h before the newest is 09:00 on the first day: that interval is kept, 08:00's is not.
    assert [ts for ts, _ in log.water] == [
        start + timedelta(hours=1),
        start + timedelta(hours=47),
        start + timedelta(hours=49),
    ]


def test_the_first_activity_of_each_routine_day_is_kept():
    log = ActivityLog()
    record(log, Metric.PRESENCE, True, local(3, 0))  # the night: Sunday's routine day
    record(log, Metric.DOOR_OPEN, True, local(3, 20))
    record(log, Metric.PRESENCE, False, local(5, 0))  # not activity
    record(log, Metric.PRESENCE, True, local(6, 45))
    record(log, Metric.DOOR_OPEN, True, local(7, 0))
    record(log, Metric.PRESENCE, True, local(8))
    record(log, Metric.PRESENCE, True, local(2, 0, day=date(2026, 12, 1)))  # still Monday's
    assert log.first_activity == {
        MONDAY - timedelta(days=1): local(3, 0),
        MONDAY: local(6, 45),
    }


def test_a_lone_visit_to_the_toilet_is_not_the_start_of_the_day():
    log = ActivityLog()
    record(log, Metric.PRESENCE, True, local(5, 0))  # then back to bed
    record(log, Metric.PRESENCE, True, local(7, 0))
    record(log, Metric.DOOR_OPEN, True, local(7, 20))
    assert log.first_activity == {MONDAY: local(7, 0)}


MINUTE = timedelta(minutes=1)


@pytest.mark.parametrize(
    ("gap", "starts"),
    [
        (timedelta(minutes=5), False),
        (SUSTAINED_AFTER - MINUTE, False),
        (SUSTAINED_AFTER, True),
        ((SUSTAINED_AFTER + SUSTAINED_WITHIN) / 2, True),
        (SUSTAINED_WITHIN, True),
        (SUSTAINED_WITHIN + MINUTE, False),
    ],
)
def test_the_day_starts_with_activity_that_more_activity_follows_soon_after(
    gap: timedelta, starts: bool
):
    # Getting up is followed by more (washing, the kettle); a moment's stir in bed is not.
    log = ActivityLog()
    record(log, Metric.PRESENCE, True, local(7, 0))
    record(log, Metric.DOOR_OPEN, True, local(7, 0) + gap)
    assert log.first_activity == ({MONDAY: local(7, 0)} if starts else {})


def test_a_late_reading_of_earlier_activity_counts_until_the_day_has_started():
    # Devices report through different hubs: a reading can arrive after later ones.
    log = ActivityLog()
    record(log, Metric.PRESENCE, True, local(8))
    record(log, Metric.DOOR_OPEN, True, local(6, 45))  # arrives late but happened earlier
    record(log, Metric.PRESENCE, True, local(7, 0))
    assert log.first_activity == {MONDAY: local(6, 45)}


def test_first_activity_is_remembered_for_a_limited_number_of_days():
    log = ActivityLog()
    first = MONDAY - timedelta(days=DAYS_REMEMBERED)
    for back in range(DAYS_REMEMBERED + 1):
        record(log, Metric.PRESENCE, True, local(7, day=first + timedelta(days=back)))
        record(log, Metric.DOOR_OPEN, True, local(7, 20, day=first + timedelta(days=back)))
    assert len(log.first_activity) == DAYS_REMEMBERED
    assert min(log.first_activity) == first + timedelta(days=1)
    assert max(log.first_activity) == MONDAY


def test_away_periods_cover_from_start_to_end():
    away = AwayPeriod(local(10), local(18, day=MONDAY + timedelta(days=2)))
    log = ActivityLog(away=[away])
    assert log.away_at(local(9, 59)) is None
    assert log.away_at(local(10)) == away
    assert log.away_at(away.end) is None
    assert log.back_since(away.end - timedelta(minutes=1)) is None
    assert log.back_since(away.end) == away.end
    assert log.away_during(local(4), local(10)) is False
    assert log.away_during(local(4), local(10, 1)) is True


def test_away_periods_are_forgotten_after_they_ended():
    old = AwayPeriod(local(8), local(9))
    recent = AwayPeriod(local(10), local(12))
    log = ActivityLog(away=[old, recent])
    log.forget_away_before(local(11))
    assert log.away == [recent]


# JSON form


def a_full_log() -> ActivityLog:
    log = ActivityLog()
    record(log, Metric.PRESENCE, True, local(3, 10), device="radar")
    record(log, Metric.DOOR_OPEN, True, local(3, 30), device="door")
    record(log, Metric.WATER_TOTAL_L, 1000.0, local(6, 45))
    record(log, Metric.WATER_TOTAL_L, 1012.5, local(7), used_l=12.5)
    record(log, Metric.POWER_W, 1200.0, local(7, 15), device="plug")
    log.heavy_since["hob"] = local(7, 20)
    log.alerted["no_water_use"] = local(7).isoformat()
    log.alerted["appliance_left_on/hob"] = local(7, 20).isoformat()
    return log


def test_the_log_survives_a_round_trip_through_json():
    log = a_full_log()
    # Tuesday's first activity, not yet followed by more: kept as a candidate start.
    tuesday = local(5, day=MONDAY + timedelta(days=1))
    record(log, Metric.PRESENCE, True, tuesday, device="radar")
    log.away = [AwayPeriod(local(12), local(18))]
    text = json.dumps(log.to_json())
    restored = ActivityLog.from_json(json.loads(text))
    assert restored.away == []  # away periods live in their own table
    log.away = []
    assert restored == log
    # Every field took part (a field left out of to_json would be empty here).
    assert all(
        (
            restored.last,
            restored.water,
            restored.first_activity,
            restored.heavy_since,
            restored.metered_since,
            restored.meter_heard,
            restored.alerted,
        )
    )
    assert restored.heard == tuesday
    assert (restored.candidates_day, restored.candidates) == (MONDAY + timedelta(days=1), [tuesday])


def test_the_json_of_an_empty_log_is_an_empty_log():
    assert ActivityLog.from_json(ActivityLog().to_json()) == ActivityLog()
    assert ActivityLog.from_json({}) == ActivityLog()


def test_times_keep_their_instant_through_json():
    restored = ActivityLog.from_json(a_full_log().to_json())
    assert restored.last[ActivityKind.WATER] == local(7)
    assert restored.first_activity[MONDAY] == local(7)
    assert restored.first_activity[MONDAY - timedelta(days=1)] == local(3, 10)


@pytest.mark.parametrize(
    "garbage",
    [
        {"last": {"sleeping": "2026-11-30T06:00:00+00:00"}},
        {"last": []},
        {"last": {"water": "yesterday"}},
        {"heard": "2026-11-30T06:00:00"},  # no zone
        {"heard": 1764482400},
        {"water": [["2026-11-30T06:00:00+00:00", "lots"]]},
        {"water": [["2026-11-30T06:00:00+00:00"]]},
        {"water": [["2026-11-30T06:00:00+00:00", None]]},
        {"water": 5},
        {"water": [["2026-11-30T06:00:00+00:00", 10**400]]},  # jsonb keeps huge numbers
        {"metered_since": {"gas": "2026-11-30T06:00:00+00:00"}},
        {"meter_heard": {"water": None}},
        {"first_activity": {"30/11/2026": "2026-11-30T06:00:00+00:00"}},
        {"heavy_since": {"hob": "soon"}},
        {"alerted": "no_water_use"},
        {"candidates_day": "Monday"},
        {"candidates": ["2026-11-30T06:00:00+00:00", "later"]},
        [],
        "a log",
        None,
    ],
)
def test_an_unreadable_log_is_an_empty_log_never_an_error(garbage: Any):
    assert ActivityLog.from_json(garbage) == ActivityLog()


def test_one_bad_field_does_not_leave_half_a_log():
    data = a_full_log().to_json()
    data["alerted"] = ["no_water_use"]
    assert ActivityLog.from_json(data) == ActivityLog()


# learning the usual start of the day


def learned(
    starts: dict[int, float],
    day: date = MONDAY,
    *,
    away: list[AwayPeriod] | None = None,
    **settings: Any,
) -> Expected | None:
    """expected_start for `day`, from first activities {days back: minutes after 04:00}."""
    log = ActivityLog(away=away or [])
    for back, minutes in starts.items():
        past = day - timedelta(days=back)
        log.first_activity[past] = at_local(past, minutes, TZ, CONFIG.day_start)
    options: dict[str, Any] = {
        "history_days": 28,
        "min_days": 7,
        "min_same_type_days": 99,  # one pool of days unless a test says otherwise
        "margin_min": 60.0,
        "spread_factor": 1.5,
        "max_late_min": 180.0,
    }
    return expected_start(log, day, TZ, CONFIG, **{**options, **settings})


def minutes_after_day_start(ts: datetime, day: date = MONDAY) -> float:
    return (ts - at_local(day, 0, TZ, CONFIG.day_start)).total_seconds() / 60


def test_nothing_is_expected_while_learning():
    six = {back: 150.0 for back in range(1, 7)}
    assert learned(six) is None
    assert learned({**six, 7: 150.0}) is not None
    assert learned(six, min_days=6) is not None


# Seven days at 06:00, 06:10 ... 07:00 (120-180 min after 04:00) in no particular order: the
# median is 06:30, the interquartile range 30 min.
SPREAD = {1: 160.0, 2: 120.0, 3: 180.0, 4: 140.0, 5: 150.0, 6: 170.0, 7: 130.0}


def test_the_usual_start_is_the_median_first_activity():
    expected = learned(SPREAD)
    assert expected is not None
    assert expected.day == MONDAY
    assert expected.usual == local(6, 30)
    assert expected.days == 7
    assert expected.spread_min == 30.0
    assert expected.weekday_aware is False


@pytest.mark.parametrize(
    ("settings", "allowance"),
    [
        ({}, 60),  # 1.5 x 30 = 45 is less than the 60 min margin
        ({"margin_min": 30.0}, 45),  # 1.5 x IQR is more than the margin
        ({"margin_min": 30.0, "spread_factor": 3.0}, 90),
        ({"margin_min": 30.0, "spread_factor": 3.0, "max_late_min": 75.0}, 75),  # capped
        ({"margin_min": 60.0, "spread_factor": 0.0}, 60),
    ],
)
def test_the_late_bound_is_the_median_plus_margin_or_spread_capped(
    settings: dict[str, Any], allowance: float
):
    expected = learned(SPREAD, **settings)
    assert expected is not None
    assert expected.late - expected.usual == timedelta(minutes=allowance)


def test_a_wide_spread_is_capped_at_max_late_min():
    # 05:00 ... 08:00: IQR 90 min, 1.5 x 90 = 135 min.
    wide = {back: 60.0 + 30 * (back - 1) for back in range(1, 8)}
    expected = learned(wide)
    assert expected is not None
    assert expected.spread_min == 90.0
    assert expected.late - expected.usual == timedelta(minutes=135)
    capped = learned(wide, max_late_min=120.0)
    assert capped is not None
    assert capped.late - capped.usual == timedelta(minutes=120)


def test_too_few_days_for_a_spread_use_the_margin():
    expected = learned({1: 100.0, 2: 150.0, 3: 300.0}, min_days=3, spread_factor=10.0)
    assert expected is not None
    assert (expected.spread_min, expected.usual) == (0.0, local(6, 30))
    assert expected.late == local(7, 30)


def test_days_without_activity_and_days_beyond_the_history_are_left_out():
    starts = {1: 150.0, 2: 150.0, 4: 150.0, 5: 150.0, 6: 150.0, 8: 150.0, 12: 600.0}
    assert learned(starts, history_days=10) is None  # six days within the last ten
    expected = learned(starts, history_days=12)
    assert expected is not None
    assert expected.days == 7


def test_todays_own_activity_is_not_learned_from():
    expected = learned({**SPREAD, 0: 10.0})
    assert expected is not None
    assert (expected.days, expected.usual) == (7, local(6, 30))


def test_days_touched_by_an_away_period_are_left_out():
    # Eight days at 06:30, except two at 11:00 while the elder was away (a neighbour watering
    # the plants): left out, they neither count nor widen the spread.
    starts = {back: 150.0 for back in range(1, 9)} | {2: 420.0, 3: 420.0}
    away = [
        AwayPeriod(
            local(10, day=MONDAY - timedelta(days=3)), local(20, day=MONDAY - timedelta(days=2))
        )
    ]
    with_away = learned(starts, away=away, min_days=5)
    without = learned(starts, min_days=5)
    assert with_away is not None
    assert without is not None
    assert (without.days, with_away.days) == (8, 6)
    assert without.spread_min > 0
    assert with_away.spread_min == 0.0
    assert with_away.late == local(7, 30)
    assert learned(starts, away=away) is None  # six days left: still learning


def test_an_away_period_over_day_start_leaves_out_both_days_it_touches():
    starts = {back: 150.0 for back in range(1, 10)}
    # Away from 22:00 three days back until 10:00 two days back.
    away = [
        AwayPeriod(
            local(22, day=MONDAY - timedelta(days=3)), local(10, day=MONDAY - timedelta(days=2))
        )
    ]
    expected = learned(starts, away=away)
    assert expected is not None
    assert expected.days == 7


def weekdays_and_weekends(day: date, days: int) -> dict[int, float]:
    """First activity at 06:30 on weekdays and 08:30 at weekends, for `days` days before `day`."""
    out = {}
    for back in range(1, days + 1):
        weekend = (day - timedelta(days=back)).weekday() >= 5
        out[back] = 270.0 if weekend else 150.0
    return out


def test_weekdays_are_learned_apart_from_weekends():
    assert (MONDAY.weekday(), SATURDAY.weekday()) == (0, 5)
    monday = learned(weekdays_and_weekends(MONDAY, 14), min_same_type_days=4)
    assert monday is not None
    assert (monday.usual, monday.days, monday.weekday_aware) == (local(6, 30), 10, True)
    saturday = learned(weekdays_and_weekends(SATURDAY, 14), SATURDAY, min_same_type_days=4)
    assert saturday is not None
    assert (saturday.usual, saturday.days, saturday.weekday_aware) == (
        local(8, 30, day=SATURDAY),
        4,
        True,
    )


def test_too_few_days_of_the_same_type_use_all_days():
    # Ten days before a Saturday hold only one weekend (two days).
    saturday = learned(weekdays_and_weekends(SATURDAY, 10), SATURDAY, min_same_type_days=4)
    assert saturday is not None
    assert (saturday.usual, saturday.days, saturday.weekday_aware) == (
        local(6, 30, day=SATURDAY),
        10,
        False,
    )
    assert minutes_after_day_start(saturday.usual, SATURDAY) == 150


SAVED_BEFORE_COMPACT_FORM = {
    # A household's log as the gateway saved it before its memory was made compact (the water
    # intervals were a deque then): the same document must load, and save, unchanged.
    "last": {"water": "2026-11-30T23:15:00+00:00", "power": "2026-11-30T23:30:00+00:00"},
    "heard": "2026-11-30T23:30:00+00:00",
    "water": [["2026-11-29T23:15:00+00:00", 35.5], ["2026-11-30T23:15:00+00:00", 35.5]],
    "metered_since": {"water": "2026-11-28T23:15:00+00:00", "power": "2026-11-28T23:30:00+00:00"},
    "meter_heard": {"water": "2026-11-30T23:15:00+00:00", "power": "2026-11-30T23:30:00+00:00"},
    "first_activity": {"2026-11-30": "2026-11-29T23:15:00+00:00"},
    "candidates_day": "2026-12-01",
    "candidates": ["2026-11-30T23:15:00+00:00"],
    "heavy_since": {"hob": "2026-11-30T23:20:00+00:00"},
    "alerted": {"no_water_use": "2026-11-29T23:15:00+00:00"},
    "false_alarms": {"no_water_use": ["2026-11-29T09:00:00+00:00"]},
}


def test_a_log_saved_before_the_compact_form_loads_and_saves_unchanged():
    restored = ActivityLog.from_json(json.loads(json.dumps(SAVED_BEFORE_COMPACT_FORM)))
    assert restored.to_json() == SAVED_BEFORE_COMPACT_FORM
    assert restored.water == [
        (datetime(2026, 11, 29, 23, 15, tzinfo=UTC), 35.5),
        (datetime(2026, 11, 30, 23, 15, tzinfo=UTC), 35.5),
    ]
    assert restored.water_used(datetime(2026, 11, 30, 0, 0, tzinfo=UTC)) == 35.5
    # One object per distinct time, as when the readings set them: memory, not meaning.
    assert restored.heard is restored.last[ActivityKind.POWER]
    assert restored.heard is restored.meter_heard[ActivityKind.POWER]
    assert restored.water[1][0] is restored.last[ActivityKind.WATER]
