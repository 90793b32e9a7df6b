"""The shape every rule has: a config model and two pure hooks returning Findings."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Protocol, TypeVar, cast
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


NOTHING: Mapping[Any, Any] = MappingProxyType({})
"""The mappings of a device that has none yet (most devices have no meter total and no run of
use): one shared, read-only empty mapping instead of an empty dict (64 bytes) each."""

_K = TypeVar("_K")
_V = TypeVar("_V")


class One(Mapping[_K, _V]):
    """A read-only mapping of one key (48 bytes; the smallest dict holding one is 224): a
    meter's one total, its run of use, a water meter's one value."""

    __slots__ = ("key", "value")

    def __init__(self, key: _K, value: _V) -> None:
        self.key = key
        self.value = value

    def __getitem__(self, key: _K) -> _V:
        if key == self.key:
            return self.value
        raise KeyError(key)

    def get(self, key: _K, default: Any = None) -> Any:
        return self.value if key == self.key else default

    def __contains__(self, key: object) -> bool:
        return key == self.key

    def __iter__(self) -> Iterator[_K]:
        return iter((self.key,))

    def __len__(self) -> int:
        return 1

    def __repr__(self) -> str:
        return f"One({self.key!r}: {self.value!r})"


def _put(mapping: Mapping[_K, _V], key: _K, value: _V) -> Mapping[_K, _V]:
    """`mapping` with `key` set to `value`: changed in place if it is a dict, else a new
    mapping (`One`, or a dict once it has two keys)."""
    if isinstance(mapping, dict):
        mapping[key] = value
        return mapping
    if not mapping or key in mapping:
        return One(key, value)
    return {**mapping, key: value}


def _without(mapping: Mapping[_K, _V], key: _K) -> Mapping[_K, _V]:
    if isinstance(mapping, dict):
        mapping.pop(key, None)
        return mapping
    return NOTHING if key in mapping else mapping


@dataclass(slots=True)
class DeviceView:
    """What the engine knows of one device: kind, when last heard, latest values.

    The engine changes the mappings through the methods below (each may be the shared
    `NOTHING` until it has an entry, then a `One`, then a dict: memory at a county's scale);
    rules only read them.
    """

    kind: DeviceKind | None = None
    source: str | None = None
    """The source (payload format) it reports through; it sets how often it must be heard."""
    registered_at: datetime | None = None
    """When it was registered, while it has never been heard (the engine forgets it then)."""
    last_seen: datetime | None = None
    values: Mapping[Metric, ReadingValue] = field(default_factory=lambda: NOTHING)
    counters: Mapping[Metric, CounterSample] = field(default_factory=lambda: NOTHING)
    use_runs: Mapping[Metric, UseRun] = field(default_factory=lambda: NOTHING)
    """Per meter total: the current unbroken run of use, if the meter's last interval had use."""
    value_times: dict[Metric, datetime] | None = None
    """When each value in `values` was measured, where known (the per-message rules' view, from
    the database): a reading may be older than the device's latest value."""

    def set_value(self, metric: Metric, value: ReadingValue) -> None:
        self.values = _put(self.values, metric, value)

    def set_counter(self, metric: Metric, sample: CounterSample) -> None:
        self.counters = _put(self.counters, metric, sample)

    def set_use_run(self, metric: Metric, run: UseRun | None) -> None:
        """The meter's current run of use; None: it has none."""
        if run is None:
            self.use_runs = _without(self.use_runs, metric)
        else:
            self.use_runs = _put(self.use_runs, metric, run)


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
    rules: RuleSet | None = None
    """This household's rules when it overrides the defaults; None means the engine's."""
    quiet: dict[str, tuple[datetime, datetime]] | None = None
    """Rule id -> (from, until): its tick found nothing at `from` and, by its `quiet_until`,
    finds nothing before `until` whatever readings come (see `Settling`). Dropped whenever
    the household's alerts, devices or settings change (`unsettle`)."""

    def unsettle(self) -> None:
        """Something a rule's `quiet_until` relied on changed: ask every rule again."""
        self.quiet = None

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
    metrics: ClassVar[frozenset[Metric] | None]
    """The metrics whose readings `on_reading` looks at (None: every reading); the engine
    calls it for those only."""
    per_message: ClassVar[bool]
    """Decided by one message and the household's active alerts alone (smoke, a call, a fall,
    vitals, battery): evaluated by whichever process takes the message, as it is stored. The
    other rules reason over time and run in the detector that owns the household
    (DESIGN.md §9)."""
    ticks: ClassVar[bool]
    """Whether `on_tick` can find anything (the passing of time matters to the rule): the
    engine ticks those rules only."""

    @property
    def config(self) -> RuleConfig: ...

    def on_reading(self, state: HouseholdState, reading: Reading) -> list[Finding]: ...

    def on_tick(self, state: HouseholdState, now: datetime) -> list[Finding]: ...


class Settling(Rule, Protocol):
    """A time-driven rule that can tell, after a tick that found nothing, how long it will go
    on finding nothing: the engine then skips its ticks until then. Over a county's
    households, most ticks of most rules find nothing; a replay ticks every minute."""

    def quiet_until(self, state: HouseholdState, now: datetime) -> datetime | None:
        """After `on_tick(state, now)` found nothing: a time before which it finds nothing
        either, whatever readings arrive meanwhile (readings may only put it off); None: ask
        at every tick. The engine asks again after the household's alerts, devices or
        settings change."""
        ...


@dataclass(frozen=True, slots=True)
class RuleSet:
    """A household's rules, indexed by the metric each looks at."""

    rules: tuple[Rule, ...]
    _message: dict[Metric, tuple[Rule, ...]]
    _activity: dict[Metric, tuple[Rule, ...]]
    tickers: tuple[tuple[Rule, Settling | None], ...]
    """The rules that tick, in order, each with itself again if it can tell how long it stays
    quiet (else None)."""

    @classmethod
    def of(cls, rules: Iterable[Rule]) -> RuleSet:
        rules = tuple(rules)
        message: dict[Metric, tuple[Rule, ...]] = {}
        activity: dict[Metric, tuple[Rule, ...]] = {}
        for metric in Metric:
            watching = [r for r in rules if r.metrics is None or metric in r.metrics]
            message[metric] = tuple(r for r in watching if r.per_message)
            activity[metric] = tuple(r for r in watching if not r.per_message)
        tickers = tuple(
            (r, cast(Settling, r) if hasattr(r, "quiet_until") else None) for r in rules if r.ticks
        )
        return cls(rules, message, activity, tickers)

    def message_rules(self, metric: Metric) -> tuple[Rule, ...]:
        """The per-message rules that look at readings of `metric`, in catalogue order."""
        return self._message[metric]

    def activity_rules(self, metric: Metric) -> tuple[Rule, ...]:
        """The rules over time that look at readings of `metric`, in catalogue order."""
        return self._activity[metric]

    def watches_per_message(self, metric: Metric) -> bool:
        return bool(self._message[metric])


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
