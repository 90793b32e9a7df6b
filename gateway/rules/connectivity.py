"""Device health rules."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from gateway.models import Finding, FindingAction, Metric, Reading, Severity
from gateway.rules.base import HouseholdState, RuleConfig, finding


class DeviceOfflineConfig(RuleConfig):
    severity: Severity = Severity.MEDIUM


class DeviceOffline:
    """A device said it is offline (status topic, last will); it clears when it is heard again."""

    id: ClassVar[str] = "device_offline"

    def __init__(self, config: DeviceOfflineConfig) -> None:
        self.config = config

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]:
        if reading.metric is Metric.ONLINE and reading.value is False:
            return [
                finding(self.id, self.config, reading, FindingAction.OPEN, "device went offline")
            ]
        if state.alert_opened_at(self.id, reading.device_id) is None:
            return []
        return [
            finding(
                self.id,
                self.config,
                reading,
                FindingAction.CLEAR,
                "device back online",
                resolves=True,
            )
        ]

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        return []
