"""Health rule: vital signs outside the elder's limits."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from gateway.devices.catalogue import format_value, unit_of
from gateway.models import Finding, FindingAction, Metric, Reading, ReadingValue, Severity
from gateway.rules.base import HouseholdState, RuleConfig, finding


class VitalLimits(BaseModel):
    """The normal range of one vital sign; a missing bound means no limit on that side."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float | None = None
    """Below this is abnormal."""
    high: float | None = None
    """Above this is abnormal."""

    @model_validator(mode="after")
    def _a_range(self) -> VitalLimits:
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self

    def breach(self, value: float) -> tuple[str, float] | None:
        """Which bound the value is beyond ("low"/"high") and the bound, or None if in range."""
        if self.low is not None and value < self.low:
            return "low", self.low
        if self.high is not None and value > self.high:
            return "high", self.high
        return None


# Defaults are alerting thresholds for remote monitoring of older adults, not diagnostic
# ranges; they are deliberately wide so that a single out-of-range value is worth a call:
# - heart rate < 45 or > 120 bpm: below the usual early-warning bradycardia trigger and above
#   the tachycardia one (NEWS2 scores 3 at <= 40 and >= 131, 1-2 from 41-50 and 111-130);
# - SpO2 < 90 %: NEWS2 scores 3 at <= 91 %; 90 % is the common home pulse-oximetry "seek
#   help" level (and leaves room for elders with COPD whose target is 88-92 %);
# - systolic > 180 or < 90 mmHg, diastolic > 110 mmHg: ESC/ESH 2018 grade 3 hypertension
#   (>= 180 / >= 110) and the usual hypotension threshold (NEWS2 scores 3 at systolic <= 90);
# - body temperature > 38.5 or < 35.5 degC: NEWS2 scores 1 above 38.0 and at or below 36.0 and
#   3 at or below 35.0; older adults often run low, so fever is taken a little above 38.
# Per-elder limits come from per-household overrides of this table.
class VitalLimitsTable(BaseModel):
    """One entry per vital sign; a table given for a metric replaces both of its bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heart_rate_bpm: VitalLimits = VitalLimits(low=45, high=120)
    spo2_pct: VitalLimits = VitalLimits(low=90)
    bp_systolic_mmhg: VitalLimits = VitalLimits(low=90, high=180)
    bp_diastolic_mmhg: VitalLimits = VitalLimits(high=110)
    body_temp_c: VitalLimits = VitalLimits(low=35.5, high=38.5)

    def for_metric(self, metric: Metric) -> VitalLimits | None:
        limits = getattr(self, metric.value, None)
        return limits if isinstance(limits, VitalLimits) else None


VITAL_METRICS = frozenset(
    {
        Metric.HEART_RATE_BPM,
        Metric.SPO2_PCT,
        Metric.BP_SYSTOLIC_MMHG,
        Metric.BP_DIASTOLIC_MMHG,
        Metric.BODY_TEMP_C,
    }
)


class AbnormalVitalsConfig(RuleConfig):
    severity: Severity = Severity.HIGH
    limits: VitalLimitsTable = VitalLimitsTable()


class AbnormalVitals:
    """A vital sign outside its limits opens an alert for the monitor that measured it.

    Every abnormal value is reported (measurements are few a day, and a second abnormal value is
    news). A normal value of a sign that was abnormal clears the alert only if none of that
    device's other signs is still abnormal: a normal pulse does not excuse a blood pressure of 190.
    """

    id: ClassVar[str] = "abnormal_vitals"
    metrics: ClassVar[frozenset[Metric] | None] = VITAL_METRICS
    per_message: ClassVar[bool] = True
    ticks: ClassVar[bool] = False

    def __init__(self, config: AbnormalVitalsConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric not in VITAL_METRICS:
            return []
        number = _number(reading.value)
        breach = self._breach(reading.metric, number)
        if number is not None and breach is not None:
            side, limit = breach
            found = finding(
                self.id,
                self.config,
                reading,
                FindingAction.OPEN,
                _describe(reading.metric, number, side, limit),
            )
            return [replace(found, evidence={**found.evidence, "limit": limit, "beyond": side})]
        if number is None:
            return []
        if state.alert_opened_at(self.id, reading.device_id) is None:
            return []
        view = state.devices.get(reading.device_id)
        before = view.values if view else {}
        if self._breach(reading.metric, before.get(reading.metric)) is None:
            return []  # this sign was not the abnormal one
        if any(
            metric is not reading.metric and self._breach(metric, value) is not None
            for metric, value in before.items()
        ):
            return []
        summary = f"{reading.metric.value} back in range; all vital signs in range"
        return [finding(self.id, self.config, reading, FindingAction.CLEAR, summary, resolves=True)]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []

    def _breach(self, metric: Metric, value: ReadingValue | None) -> tuple[str, float] | None:
        limits = self.config.limits.for_metric(metric) if metric in VITAL_METRICS else None
        number = _number(value)
        if limits is None or number is None:
            return None
        return limits.breach(number)


def _describe(metric: Metric, number: float, side: str, limit: float) -> str:
    """E.g. "body_temp_c 38.7 °C is above the limit 38.5 °C" (the limit as configured)."""
    shown = format_value(metric, number)
    if shown == format_value(metric, limit):
        # Rounded for display, a value just beyond the limit would read as the limit itself.
        shown = f"{number} {unit_of(metric)}"
    beyond = "below" if side == "low" else "above"
    return f"{metric.value} {shown} is {beyond} the limit {limit:g} {unit_of(metric)}"


def _number(value: ReadingValue | None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
