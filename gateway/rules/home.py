"""Home rules: water where it should not be or that does not stop; an appliance left on."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import ClassVar

from pydantic import Field

from gateway.devices.catalogue import format_value
from gateway.models import Finding, FindingAction, Metric, Reading, Severity
from gateway.rules.activity import ActivityKind
from gateway.rules.base import SPELL_KEY, HouseholdState, RuleConfig, alerted_key, finding
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
    metrics: ClassVar[frozenset[Metric] | None] = frozenset(
        {Metric.WATER_LEAK, Metric.WATER_TOTAL_L}
    )
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = False

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
        litres = format_value(Metric.WATER_TOTAL_L, run.amount)
        found = finding(
            self.id,
            self.config,
            reading,
            FindingAction.OPEN,
            f"water flowing without a break for {minutes:.0f} min ({litres})",
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


class ApplianceLeftOnConfig(RuleConfig):
    severity: Severity = Severity.MEDIUM
    heavy_w: float = Field(default=1500.0, gt=0, le=20_000)
    """A load above this many watts (a hob, a heater, a kettle that does not switch off)..."""
    duration_min: float = Field(default=120.0, ge=10, le=24 * 60)
    """...without a break for longer than this, with no other activity in that time."""


class ApplianceLeftOn:
    """A heavy load on one plug or meter for too long while nothing else happens at home.

    Other activity (water, motion, the door, a button, a measurement) in the last
    `duration_min` means someone is about; electricity use elsewhere does not count, since the
    whole-house meter sees the load itself. Not suspended while away: a hob left on in an empty
    home is worse. Clears when the load drops below `heavy_w`; alerts once per run of load.
    """

    id: ClassVar[str] = "appliance_left_on"
    metrics: ClassVar[frozenset[Metric] | None] = frozenset({Metric.POWER_W})
    per_message: ClassVar[bool] = False
    ticks: ClassVar[bool] = True

    def __init__(self, config: ApplianceLeftOnConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric is not Metric.POWER_W or not isinstance(reading.value, int | float):
            return []
        if reading.value > self.config.heavy_w:
            return []
        if state.alert_opened_at(self.id, reading.device_id) is None:
            return []
        return [
            finding(self.id, self.config, reading, FindingAction.CLEAR, "load off", resolves=True)
        ]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        log = state.log
        window = timedelta(minutes=self.config.duration_min)
        findings = []
        for device_id, since in log.heavy_since.items():
            if now - since <= window or state.alert_opened_at(self.id, device_id) is not None:
                continue
            other = log.last_activity(besides=frozenset({ActivityKind.POWER}))
            if other is not None and other > now - window:
                continue
            spell = since.isoformat()
            if log.alerted.get(alerted_key(self.id, device_id)) == spell:
                continue
            view = state.devices.get(device_id)
            watts = view.values.get(Metric.POWER_W) if view else None
            hours = (now - since).total_seconds() / 3600
            findings.append(
                Finding(
                    rule_id=self.id,
                    household_id=state.household_id,
                    device_id=device_id,
                    severity=self.config.severity,
                    action=FindingAction.OPEN,
                    ts=now,
                    summary=f"heavy load for {hours:.1f} h with nobody active",
                    evidence={
                        "power_w": watts if isinstance(watts, int | float) else None,
                        "heavy_w": self.config.heavy_w,
                        "on_since": spell,
                        "last_other_activity": other.isoformat() if other else None,
                        SPELL_KEY: spell,
                    },
                )
            )
        return findings
