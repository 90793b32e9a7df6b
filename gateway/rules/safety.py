"""Safety rules: smoke or gas, a fall, and the elder's own call for help."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from pydantic import Field

from gateway.models import ButtonAction, Finding, FindingAction, Metric, Reading, Severity
from gateway.rules.base import HouseholdState, RuleConfig, finding

_ALARM_METRICS = frozenset({Metric.SMOKE, Metric.GAS_LEAK})
_CALLS = frozenset({ButtonAction.SOS, ButtonAction.SINGLE, ButtonAction.DOUBLE, ButtonAction.LONG})


class SmokeAlarmConfig(RuleConfig):
    severity: Severity = Severity.CRITICAL


class SmokeAlarm:
    """Smoke or gas reported: critical, and it stays open until someone acknowledges it.

    The detector going quiet is noted on the alert but does not close it: a fire that is out of
    the sensor's sight is still a fire until a person has checked.
    """

    id: ClassVar[str] = "smoke_alarm"
    metrics: ClassVar[frozenset[Metric] | None] = _ALARM_METRICS
    per_message: ClassVar[bool] = True
    ticks: ClassVar[bool] = False

    def __init__(self, config: SmokeAlarmConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric not in _ALARM_METRICS:
            return []
        what = "smoke" if reading.metric is Metric.SMOKE else "gas"
        if reading.value is True and _self_testing(state, reading.device_id):
            return []  # the installer or the elder is pressing the test button
        if reading.value is True:
            return [finding(self.id, self.config, reading, FindingAction.OPEN, f"{what} detected")]
        if state.alert_opened_at(self.id, reading.device_id) is not None:
            return [
                finding(
                    self.id, self.config, reading, FindingAction.CLEAR, f"{what} no longer detected"
                )
            ]
        return []

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []


def _self_testing(state: HouseholdState, device_id: str) -> bool:
    # Normalisers put a detector's test flag before its smoke value, so the flag of the same
    # message is already in the state when the smoke value is evaluated.
    view = state.devices.get(device_id)
    return view is not None and view.values.get(Metric.SELF_TEST) is True


class CallButtonConfig(RuleConfig):
    severity: Severity = Severity.CRITICAL
    cancel_window_s: float = Field(default=30.0, ge=0, le=600)
    """A `cancel` press this soon after the call withdraws it (pressed by mistake)."""


class CallButton:
    """Any press of a call button is a call for help; a quick `cancel` withdraws it."""

    id: ClassVar[str] = "call_button"
    metrics: ClassVar[frozenset[Metric] | None] = frozenset({Metric.BUTTON})
    per_message: ClassVar[bool] = True
    ticks: ClassVar[bool] = False

    def __init__(self, config: CallButtonConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric is not Metric.BUTTON:
            return []
        if reading.value in _CALLS:
            call = finding(
                self.id, self.config, reading, FindingAction.OPEN, f"call button: {reading.value}"
            )
            cancelled = self._cancelled_after(state, reading)
            if cancelled is None:
                return [call]
            # Another process stored the cancel first (a household's messages may be taken by
            # any process, in any order): the call is withdrawn as soon as it is opened.
            elapsed = (cancelled - reading.ts).total_seconds()
            summary = f"withdrawn by the elder {elapsed:.0f} s after the call"
            withdrawn = finding(
                self.id, self.config, reading, FindingAction.CLEAR, summary, resolves=True
            )
            return [call, withdrawn]
        if reading.value != ButtonAction.CANCEL:
            return []
        opened_at = state.alert_opened_at(self.id, reading.device_id)
        if opened_at is None:
            return []
        elapsed = (reading.ts - opened_at).total_seconds()
        if 0 <= elapsed <= self.config.cancel_window_s:
            return [
                finding(
                    self.id,
                    self.config,
                    reading,
                    FindingAction.CLEAR,
                    f"withdrawn by the elder {elapsed:.0f} s after the call",
                    resolves=True,
                )
            ]
        # Too late to withdraw: someone must still check, but the cancel is worth knowing.
        return [
            finding(
                self.id,
                self.config,
                reading,
                FindingAction.CLEAR,
                f"elder pressed cancel {elapsed:.0f} s after the call",
            )
        ]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []

    def _cancelled_after(self, state: HouseholdState, call: Reading) -> datetime | None:
        """When the device's latest state, newer than the call, is a cancel within the window."""
        view = state.devices.get(call.device_id)
        if view is None or view.value_times is None:
            return None
        at = view.value_times.get(Metric.BUTTON)
        if at is None or view.values.get(Metric.BUTTON) != ButtonAction.CANCEL:
            return None
        elapsed = (at - call.ts).total_seconds()
        return at if 0 <= elapsed <= self.config.cancel_window_s else None


class FallDetectedConfig(RuleConfig):
    severity: Severity = Severity.CRITICAL


class FallDetected:
    """A fall sensor or health monitor reported a fall: critical, open until acknowledged.

    The sensor later reporting no fall is noted but does not close the alert: the elder may have
    crawled out of the radar's view, or be lying still; only a person can say they are fine.
    """

    id: ClassVar[str] = "fall_detected"
    metrics: ClassVar[frozenset[Metric] | None] = frozenset({Metric.FALL})
    per_message: ClassVar[bool] = True
    ticks: ClassVar[bool] = False

    def __init__(self, config: FallDetectedConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric is not Metric.FALL:
            return []
        if reading.value is True:
            return [finding(self.id, self.config, reading, FindingAction.OPEN, "fall detected")]
        if reading.value is False and state.alert_opened_at(self.id, reading.device_id) is not None:
            summary = "sensor no longer reports a fall"
            return [finding(self.id, self.config, reading, FindingAction.CLEAR, summary)]
        return []

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []
