"""Home rules: water where it should not be, or water that does not stop."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import Field

from gateway.models import Finding, FindingAction, Metric, Reading, Severity
from gateway.rules.base import HouseholdState, RuleConfig, finding
from gateway.rules.counters import UseRun, continue_run


class WaterLeakConfig(RuleConfig):
    severity: Severity = Severity.HIGH
    continuous_flow_min: float = Field(default=60.0, gt=0, le=24 * 60)
    """Water flowing without a break for longer than this is a leak or a tap left running."""
    min_flow_lpm: float = Field(default=0.5, ge=0, le=200)
    """For meters reporting less often than a quarter of the window: the average flow that
    still counts as running."""


class WaterLeak:
    """A leak sensor that is wet, or a water meter that shows use without a break for too long.

    Both are condition rules: the sensor drying, or the meter showing an interval with no use,
    clears the alert. The alert is on the sensor or the meter that saw it.

    Continuous flow is judged between the meter's own readings: each interval with use continues
    the run, an interval without use ends it. A meter that reports rarely cannot show a pause
    inside one long interval, so a run containing an interval longer than a quarter of the
    window counts only if its average flow is above `min_flow_lpm` (30 l an hour by default: a
    running cistern or a dripping pipe, not a shower and the washing-up spread over two hours).
    """

    id: ClassVar[str] = "water_leak"

    def __init__(self, config: WaterLeakConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric is Metric.WATER_LEAK:
            return self._leak_sensor(state, reading)
        if reading.metric is Metric.WATER_TOTAL_L:
            return self._meter(state, reading)
        return []

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []

    def _leak_sensor(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.value is True:
            return [finding(self.id, self.config, reading, FindingAction.OPEN, "water detected")]
        if reading.value is False and state.alert_opened_at(self.id, reading.device_id) is not None:
            return [
                finding(
                    self.id, self.config, reading, FindingAction.CLEAR, "dry again", resolves=True
                )
            ]
        return []

    def _meter(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        used = state.consumption
        if used is None:
            return []  # first reading, or a new baseline: nothing known about flow
        view = state.devices.get(reading.device_id)
        run = continue_run(view.use_runs.get(reading.metric) if view else None, used)
        is_open = state.alert_opened_at(self.id, reading.device_id) is not None
        if run is None:
            if not is_open:
                return []
            summary = "water flow stopped"
            return [
                finding(self.id, self.config, reading, FindingAction.CLEAR, summary, resolves=True)
            ]
        if is_open or not self._continuous(run):
            return []
        minutes = run.duration.total_seconds() / 60
        found = finding(
            self.id,
            self.config,
            reading,
            FindingAction.OPEN,
            f"water flowing without a break for {minutes:.0f} min ({run.amount:.0f} l)",
        )
        evidence = {
            **found.evidence,
            "flowing_since": run.since.isoformat(),
            "litres": round(run.amount, 1),
            "average_lpm": round(_average_lpm(run), 2),
        }
        return [replace(found, evidence=evidence)]

    def _continuous(self, run: UseRun) -> bool:
        window = timedelta(minutes=self.config.continuous_flow_min)
        if run.duration <= window:
            return False
        # Only readings close together can show that the flow never paused; with coarser ones
        # (an hourly meter sees use in every hour of a busy morning) the average must be high.
        return run.longest <= window / 4 or _average_lpm(run) > self.config.min_flow_lpm


def _average_lpm(run: UseRun) -> float:
    return run.amount / (run.duration.total_seconds() / 60)
