"""The charts' buckets: UTC-aligned, the last one holding now, every one listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.store.series import RANGES, Window


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "end"),
    [
        ("2026-11-30 04:07:00", "2026-11-30 04:15:00"),
        ("2026-11-30 04:14:59.999", "2026-11-30 04:15:00"),
        ("2026-11-30 04:15:00", "2026-11-30 04:30:00"),  # a new bucket begins: it holds now
    ],
)
def test_a_day_ends_with_the_quarter_hour_holding_now(now: str, end: str):
    span, bucket_s = RANGES["24h"]
    window = Window.ending_at(at(now), span, bucket_s)
    assert (window.end, window.start) == (at(end), at(end) - timedelta(hours=24))
    assert window.size == 96
    assert window.index(at(now)) == 95


def test_a_week_is_168_hours_and_each_point_is_its_buckets_start():
    span, bucket_s = RANGES["7d"]
    window = Window.ending_at(at("2026-11-30 04:07:00"), span, bucket_s)
    points = window.points([1.23456, *([None] * 166), 2.0], 2)
    assert len(points) == 168
    assert points[0] == (at("2026-11-23 05:00:00"), 1.23)
    assert points[1] == (at("2026-11-23 06:00:00"), None)
    assert points[-1] == (at("2026-11-30 04:00:00"), 2.0)
    assert window.index(at("2026-11-23 05:59:59")) == 0
