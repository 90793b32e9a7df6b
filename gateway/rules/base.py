"""The shape every rule has: a config model and two pure hooks returning Findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from gateway.models import (
    HOUSEHOLD_DEVICE,
    DeviceKind,
    EvidenceValue,
    Finding,
    FindingAction,
    Metric,
    Reading,
    ReadingValue,
    Severity,
)
from gateway.rules.activity import ActivityConfig, ActivityKind, ActivityLog
from gateway.rules.counters import Consumption, CounterSample, UseRun

DEFAULT_TZ = ZoneInfo("Asia/Shanghai")


def alerted_key(rule_id: str, device_id: str) -> str:
    """The key of `ActivityLog.alerted` for an alert of `rule_id` on `device_id`."""
    return rule_id if device_id == HOUSEHOLD_DEVICE else f"{rule_id}/{device_id}"


SPELL_KEY = "inactive_since"
"""Evidence key naming the spell of inactivity an inactivity alert is about (its last sign of
life); the engine remembers it so the same spell never alerts twice."""


class RuleConfig(BaseModel):
    """Settings every rule has; rule families add their own fields."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    severity: Severity


@dataclass(slots=True)
class DeviceView:
    """What the engine knows of one device: kind, when last heard, latest values."""

    kind: DeviceKind | None = None
    source: str | None = None
    """The source (payload format) it reports through; it sets how often it must be heard."""
    registered_at: datetime | None = None
    last_seen: datetime | None = None
    values: dict[Metric, ReadingValue] = field(default_factory=dict)
    counters: dict[Metric, CounterSample] = field(default_factory=dict)
    use_runs: dict[Metric, UseRun] = field(default_factory=dict)
    """Per meter total: the current unbroken run of use, if the meter's last interval had use."""


@dataclass(slots=True)
class HouseholdState:
    """One household as rules see it. Rules read it; only the engine changes it."""

    household_id: str
    devices: dict[str, DeviceView] = field(default_factory=dict)
    open_alerts: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(rule id, device id) -> event time the active alert was opened."""
    last_use: dict[Metric, datetime] = field(default_factory=dict)
    """Per cumulative metric (water, energy): when the household was last seen using some."""
    consumption: Consumption | None = None
    """The use revealed by the reading being evaluated, if it is a meter total."""
    activity_now: ActivityKind | None = None
    """The activity the reading being evaluated shows, if any."""
    retained_now: bool = False
    """The reading being evaluated is a retained copy of a state (the broker's, sent again on
    reconnect): a state to judge, but no sign that the device or the elder is alive now."""
    tz: ZoneInfo = DEFAULT_TZ
    """The household's time zone: night hours and days are local."""
    activity_config: ActivityConfig = field(default_factory=ActivityConfig)
    log: ActivityLog = field(default_factory=ActivityLog)
    rules: list[Rule] | None = None
    """This household's rules when it overrides the defaults; None means the engine's."""

    def alert_opened_at(self, rule_id: str, device_id: str) -> datetime | None:
        return self.open_alerts.get((rule_id, device_id))

    def household_finding(
        self,
        rule_id: str,
        config: RuleConfig,
        action: FindingAction,
        ts: datetime,
        summary: str,
        evidence: dict[str, EvidenceValue],
    ) -> Finding:
        """A Finding about the whole household (device id `household`)."""
        return Finding(
            rule_id=rule_id,
            household_id=self.household_id,
            device_id=HOUSEHOLD_DEVICE,
            severity=config.severity,
            action=action,
            ts=ts,
            summary=summary,
            evidence=evidence,
            resolves=action is FindingAction.CLEAR,
        )


class Rule(Protocol):
    id: ClassVar[str]

    @property
    def config(self) -> RuleConfig: ...

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]: ...

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]: ...


def finding(
    rule_id: str,
    config: RuleConfig,
    reading: Reading,
    action: FindingAction,
    summary: str,
    *,
    resolves: bool = False,
    severity: Severity | None = None,
) -> Finding:
    """A Finding about the reading's device, with the reading as evidence."""
    return Finding(
        rule_id=rule_id,
        household_id=reading.household_id,
        device_id=reading.device_id,
        severity=severity or config.severity,
        action=action,
        ts=reading.ts,
        summary=summary,
        evidence={
            "metric": reading.metric.value,
            "value": reading.value,
            "kind": reading.kind.value if reading.kind else None,
            "ts": reading.ts.isoformat(),
        },
        resolves=resolves,
    )
