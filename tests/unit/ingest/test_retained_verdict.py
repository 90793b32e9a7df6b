"""Retained messages are current state, not news (the pure verdict)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.ingest.retained import judge_retained
from gateway.models import Metric, Reading, ReadingValue

ARRIVED = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def reading(metric: Metric, value: ReadingValue, ts: datetime = ARRIVED) -> Reading:
    return Reading("H001", "dev-1", None, metric, value, None, ts)


def knows(values: dict[Metric, ReadingValue]):  # type: ignore[no-untyped-def]
    return lambda household, device, metric: values.get(metric)


def test_a_known_state_is_nothing():
    verdict = judge_retained([reading(Metric.SMOKE, True)], ARRIVED, knows({Metric.SMOKE: True}))
    assert (verdict.readings, verdict.state, verdict.events, verdict.unchanged) == ([], [], [], 1)


def test_a_changed_or_unknown_state_is_state():
    changed, unknown = reading(Metric.ONLINE, False), reading(Metric.BATTERY_PCT, 40.0)
    verdict = judge_retained([changed, unknown], ARRIVED, knows({Metric.ONLINE: True}))
    assert verdict.state == [changed, unknown]
    assert verdict.unchanged == 0


def test_a_button_press_is_an_old_event_whatever_it_says():
    press = reading(Metric.BUTTON, "sos")
    verdict = judge_retained([press], ARRIVED, knows({}))
    assert (verdict.events, verdict.state, verdict.readings) == ([press], [], [])


def test_a_reading_with_its_own_time_is_an_ordinary_reading():
    stamped = reading(Metric.SMOKE, True, ARRIVED - timedelta(hours=3))
    verdict = judge_retained([stamped], ARRIVED, knows({Metric.SMOKE: True}))
    assert verdict.readings == [stamped]  # stored once by its time, like any redelivery
