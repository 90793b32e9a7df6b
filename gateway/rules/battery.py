"""Battery rule: a device about to go silent because its battery is running out."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field, model_validator

from gateway.devices.catalogue import format_value
from gateway.models import Finding, FindingAction, Metric, Reading, ReadingValue, Severity
from gateway.rules.base import HouseholdState, RuleConfig, finding


class LowBatteryConfig(RuleConfig):
    severity: Severity = Severity.LOW
    threshold_pct: float = Field(default=15.0, ge=0, le=100)
    """Below this the battery is low."""
    hysteresis_pct: float = Field(default=5.0, ge=0, le=50)
    """The alert clears only at threshold + this, so a level wobbling around it does not flap."""

    @model_validator(mode="after")
    def _clear_level_reachable(self) -> LowBatteryConfig:
        if self.threshold_pct + self.hysteresis_pct > 100:
            raise ValueError("threshold_pct + hysteresis_pct must not exceed 100")
        return self


class LowBattery:
    """A battery below the threshold, or a device saying its battery is low.

    A condition rule: it clears itself once the battery is back at threshold + hysteresis (a new
    battery) and the device no longer says it is low. Devices that send both a percentage and a
    low flag are cleared only when both agree, so the two signals cannot make it flap.
    """

    id: ClassVar[str] = "low_battery"
    metrics: ClassVar[frozenset[Metric] | None] = frozenset(
        {Metric.BATTERY_PCT, Metric.BATTERY_LOW}
    )
    per_message: ClassVar[bool] = True
    ticks: ClassVar[bool] = False

    def __init__(self, config: LowBatteryConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric not in (Metric.BATTERY_PCT, Metric.BATTERY_LOW):
            return []
        is_open = state.alert_opened_at(self.id, reading.device_id) is not None
        if self._low(reading.metric, reading.value):
            if is_open:
                return []  # already reported; a battery report every hour is no news
            summary = _describe(reading.metric, reading.value)
            return [finding(self.id, self.config, reading, FindingAction.OPEN, summary)]
        if not is_open or not self._recovered(reading.metric, reading.value):
            return []
        view = state.devices.get(reading.device_id)
        others = view.values.items() if view else ()
        if any(
            metric is not reading.metric
            and metric in (Metric.BATTERY_PCT, Metric.BATTERY_LOW)
            and not self._recovered(metric, value)
            for metric, value in others
        ):
            return []  # the device's other battery signal still says low
        return [
            finding(self.id, self.config, reading, FindingAction.CLEAR, "battery ok", resolves=True)
        ]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []

    def _low(self, metric: Metric, value: ReadingValue) -> bool:
        if metric is Metric.BATTERY_LOW:
            return value is True
        level = _level(value)
        return level is not None and level < self.config.threshold_pct

    def _recovered(self, metric: Metric, value: ReadingValue) -> bool:
        if metric is Metric.BATTERY_LOW:
            return value is False
        level = _level(value)
        return level is not None and level >= self.config.threshold_pct + self.config.hysteresis_pct


def _level(value: ReadingValue) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _describe(metric: Metric, value: ReadingValue) -> str:
    if metric is Metric.BATTERY_LOW:
        return "device reports low battery"
    level = _level(value)
    return f"battery at {format_value(metric, level)}" if level is not None else "battery low"
