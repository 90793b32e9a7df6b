from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.devices import DeviceMessage, shelly
from gateway.models import Metric
from gateway.rules.counters import CounterSample, consumption, continue_run
from tests.unit.rules.helpers import T0

W = Metric.WATER_TOTAL_L
E = Metric.ENERGY_TOTAL_KWH


def use(metric: Metric, before: float, after: float, hours: float = 1) -> float | None:
    found = consumption(
        metric, CounterSample(before, T0), CounterSample(after, T0 + timedelta(hours=hours))
    )
    return None if found is None else found.amount


def test_ordinary_use_is_the_difference():
    assert use(W, 183_402.5, 183_440.0) == pytest.approx(37.5)
    assert use(E, 5321.44, 5321.94) == pytest.approx(0.5)


def test_no_use_is_zero_not_none():
    assert use(W, 100.0, 100.0) == 0


def test_use_is_the_exact_difference_of_the_totals_the_meter_sent():
    assert use(W, 183_402.5, 183_402.6) == 0.1  # not 0.10000000000582077
    assert use(E, 0.1, 0.3) == 0.2


def shelly_total(watt_hours: float) -> float:
    body = f'{{"id": 0, "aenergy": {{"total": {watt_hours}}}}}'.encode()
    message = DeviceMessage("H001", "plug-1", "status/switch:0", body, T0)
    (reading,) = shelly.normalise(message).readings
    assert isinstance(reading.value, float)
    return reading.value


def test_a_slow_counter_moving_by_a_quarter_watt_hour_is_use():
    # Rounded to 3 decimals of kWh, both totals were 0.913 and the use was lost.
    assert use(E, shelly_total(913.252), shelly_total(913.502), hours=0.25) == 0.00025


def test_a_total_sent_again_is_no_use_and_ends_a_run_of_use():
    again = consumption(
        E,
        CounterSample(shelly_total(913.252), T0),
        CounterSample(shelly_total(913.252), T0 + timedelta(minutes=1)),
    )
    assert again is not None
    assert again.amount == 0
    assert continue_run(None, again) is None


def test_a_meter_reset_or_replacement_counts_no_use():
    assert use(W, 183_402.5, 12.0) is None  # went backwards: new meter
    assert use(E, 100.0, 0.0) is None


def test_a_rollover_is_counted_across_the_wrap():
    # A 5-digit m³ register (99 999 m³ = 99 999 000 l) wrapping to zero.
    assert use(W, 99_999_950.0, 30.0) == 80.0
    assert use(W, 99_999_950.3, 30.1) == 79.8  # in floats 79.80000000298023


def test_a_jump_beyond_what_the_supply_can_deliver_is_no_use():
    assert use(W, 1000.0, 1000.0 + 20_000, hours=1) is None
    assert use(E, 10.0, 10.0 + 60, hours=1) is None
    assert use(E, 10.0, 10.0 + 40, hours=1) == pytest.approx(40)


def test_first_reading_and_out_of_order_readings_give_nothing():
    assert consumption(W, None, CounterSample(5.0, T0)) is None
    assert use(W, 5.0, 6.0, hours=-1) is None
