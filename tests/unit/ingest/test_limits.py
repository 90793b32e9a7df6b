"""Per-household flood limits (the pure part): the message rate, and what counts as an alarm."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.ingest.limits import BACKLOG_SPAN, HouseholdRate, is_alarm, rate_time
from gateway.models import Metric, Reading, ReadingValue

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def taken(rate: HouseholdRate, n: int, at: datetime, *, alarm: bool = False) -> list[bool]:
    window = rate.batch()
    decisions = [window.admit("H001", at, alarm=alarm)[0] for _ in range(n)]
    window.commit()
    return decisions


def test_a_burst_is_taken_then_ordinary_messages_are_shed_and_alarms_still_pass():
    rate = HouseholdRate(per_s=2, burst=5)
    assert taken(rate, 7, T0) == [True] * 5 + [False] * 2
    assert taken(rate, 3, T0, alarm=True) == [True] * 3


def test_the_bucket_refills_at_the_rate():
    rate = HouseholdRate(per_s=2, burst=5)
    taken(rate, 5, T0)
    assert taken(rate, 3, T0 + timedelta(seconds=1)) == [True, True, False]


def test_households_have_their_own_buckets():
    rate = HouseholdRate(per_s=1, burst=1)
    window = rate.batch()
    assert [window.admit(h, T0, alarm=False)[0] for h in ("H001", "H002", "H001")] == [
        True,
        True,
        False,
    ]


def test_a_batch_that_is_not_committed_spends_nothing():
    rate = HouseholdRate(per_s=1, burst=3)
    window = rate.batch()
    assert [window.admit("H001", T0, alarm=False)[0] for _ in range(3)] == [True] * 3
    # The database refused the batch; it is tried again with a new window.
    assert taken(rate, 3, T0) == [True] * 3


def test_one_shed_message_a_minute_is_kept_as_a_dead_letter():
    rate = HouseholdRate(per_s=0.001, burst=1)
    taken(rate, 1, T0)
    window = rate.batch()
    notes = [window.admit("H001", T0 + timedelta(seconds=s), alarm=False)[1] for s in (0, 30, 61)]
    assert notes == [True, False, True]


def test_memory_is_bounded_by_forgetting_refilled_buckets():
    rate = HouseholdRate(per_s=10, burst=10, most_households=100)
    for n in range(1000):
        window = rate.batch()
        window.admit(f"H{n}", T0 + timedelta(seconds=n), alarm=False)
        window.commit()
    assert len(rate._buckets) <= 101


@pytest.mark.parametrize(
    ("metric", "value", "alarm"),
    [
        (Metric.SMOKE, True, True),
        (Metric.SMOKE, False, False),
        (Metric.GAS_LEAK, True, True),
        (Metric.WATER_LEAK, True, True),
        (Metric.FALL, True, True),
        (Metric.BUTTON, "sos", True),
        (Metric.BUTTON, "cancel", True),
        (Metric.WATER_TOTAL_L, 12.0, False),
        (Metric.ONLINE, False, False),
        (Metric.HEART_RATE_BPM, 180.0, False),
    ],
)
def test_what_counts_as_an_alarm(metric: Metric, value: ReadingValue, alarm: bool):
    assert is_alarm(Reading("H001", "d", None, metric, value, None, T0)) is alarm


def test_a_backlog_counts_at_the_readings_own_times_so_it_is_not_a_flood():
    rate = HouseholdRate(per_s=1, burst=10)
    arrived = T0 + timedelta(hours=3)
    window = rate.batch()
    # Three hours of one reading a second, drained in one go after a restart.
    decisions = [
        window.admit(
            "H001", rate_time([_stamped(T0 + timedelta(seconds=s))], arrived), alarm=False
        )[0]
        for s in range(3 * 3600)
    ]
    assert all(decisions)


def test_forged_times_buy_nothing_beyond_the_backlog_span():
    arrived = T0
    assert rate_time([_stamped(T0 + timedelta(days=1))], arrived) == arrived
    assert rate_time([_stamped(T0 - timedelta(days=400))], arrived) == arrived - BACKLOG_SPAN
    assert rate_time([], arrived) == arrived  # no time of its own: the arrival time
    # Going back in time refills nothing.
    rate = HouseholdRate(per_s=1, burst=2)
    window = rate.batch()
    times = [T0, T0 - timedelta(hours=1), T0 - timedelta(hours=2)]
    assert [window.admit("H001", t, alarm=False)[0] for t in times] == [True, True, False]


def _stamped(ts: datetime) -> Reading:
    return Reading("H001", "meter", None, Metric.POWER_W, 10.0, "W", ts)
