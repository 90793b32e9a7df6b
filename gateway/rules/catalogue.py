"""The rule catalogue: which rules exist, their config models, and loading rules.toml."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from gateway.models import Severity
from gateway.rules.activity import ActivityConfig, within_hours
from gateway.rules.base import Rule
from gateway.rules.battery import LowBattery, LowBatteryConfig
from gateway.rules.connectivity import DeviceOffline, DeviceOfflineConfig
from gateway.rules.health import AbnormalVitals, AbnormalVitalsConfig
from gateway.rules.home import ApplianceLeftOn, ApplianceLeftOnConfig, WaterLeak, WaterLeakConfig
from gateway.rules.routine import (
    MissedRoutine,
    MissedRoutineConfig,
    NoPowerUse,
    NoPowerUseConfig,
    NoWaterUse,
    NoWaterUseConfig,
)
from gateway.rules.safety import (
    CallButton,
    CallButtonConfig,
    FallDetected,
    FallDetectedConfig,
    SmokeAlarm,
    SmokeAlarmConfig,
)

DEFAULT_RULES_FILE = Path(__file__).resolve().parent.parent / "defaults" / "rules.toml"


class QuietHoursConfig(BaseModel):
    """Notifications of alerts of these severities opened in these hours (household's local
    time) wait until the quiet hours end; the alert itself opens at once."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    start: time = time(22, 0)
    end: time = time(7, 0)
    severities: frozenset[Severity] = frozenset({Severity.LOW})

    @model_validator(mode="after")
    def _never_quiet_for_danger(self) -> QuietHoursConfig:
        if Severity.CRITICAL in self.severities:
            raise ValueError("critical alerts are never held back")
        return self

    def holds(self, severity: Severity, local: time) -> bool:
        """Whether a notification for `severity` waits at local time `local`."""
        if not self.enabled or severity not in self.severities:
            return False
        return within_hours(local, self.start, self.end)


class RulesConfig(BaseModel):
    """One table per rule id; a missing table means the rule's defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    activity: ActivityConfig = ActivityConfig()
    quiet_hours: QuietHoursConfig = QuietHoursConfig()
    smoke_alarm: SmokeAlarmConfig = SmokeAlarmConfig()
    call_button: CallButtonConfig = CallButtonConfig()
    fall_detected: FallDetectedConfig = FallDetectedConfig()
    water_leak: WaterLeakConfig = WaterLeakConfig()
    no_water_use: NoWaterUseConfig = NoWaterUseConfig()
    no_power_use: NoPowerUseConfig = NoPowerUseConfig()
    missed_routine: MissedRoutineConfig = MissedRoutineConfig()
    abnormal_vitals: AbnormalVitalsConfig = AbnormalVitalsConfig()
    appliance_left_on: ApplianceLeftOnConfig = ApplianceLeftOnConfig()
    device_offline: DeviceOfflineConfig = DeviceOfflineConfig()
    low_battery: LowBatteryConfig = LowBatteryConfig()


class RulesConfigError(Exception):
    """rules.toml cannot be used; the message names the file and the key."""


def load_rules_config(path: Path | None = None) -> RulesConfig:
    """Read a rules file (the built-in defaults when None) and validate it."""
    path = path or DEFAULT_RULES_FILE
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RulesConfigError(f"{path}: rules file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return RulesConfig(**data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(p) for p in first["loc"])
        raise RulesConfigError(f"{path}: {key}: {first['msg']}") from None


def build_rules(config: RulesConfig) -> list[Rule]:
    """The enabled rules, in catalogue order."""
    rules: list[Rule] = [
        SmokeAlarm(config.smoke_alarm),
        CallButton(config.call_button),
        FallDetected(config.fall_detected),
        WaterLeak(config.water_leak),
        NoWaterUse(config.no_water_use),
        NoPowerUse(config.no_power_use),
        MissedRoutine(config.missed_routine),
        AbnormalVitals(config.abnormal_vitals),
        ApplianceLeftOn(config.appliance_left_on),
        DeviceOffline(config.device_offline),
        LowBattery(config.low_battery),
    ]
    return [rule for rule in rules if rule.config.enabled]
