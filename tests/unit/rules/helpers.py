"""Builders for rule tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.models import DeviceKind, Metric, Reading, ReadingValue

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def reading(
    metric: Metric,
    value: ReadingValue,
    *,
    after_s: float = 0,
    device: str = "dev-1",
    kind: DeviceKind | None = None,
    household: str = "H001",
) -> Reading:
    return Reading(household, device, kind, metric, value, None, T0 + timedelta(seconds=after_s))
