"""The shape every rule has: a config model and two pure hooks returning Findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from gateway.models import (
    DeviceKind,
    Finding,
    FindingAction,
    Metric,
    Reading,
    ReadingValue,
    Severity,
)
from gateway.rules.counters import Consumption, CounterSample, UseRun


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

    def alert_opened_at(self, rule_id: str, device_id: str) -> datetime | None:
        return self.open_alerts.get((rule_id, device_id))


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
