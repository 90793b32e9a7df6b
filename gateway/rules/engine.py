"""The rule engine: keeps each household's state and runs every rule on readings and ticks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from gateway.models import DeviceKind, Finding, Metric, Reading, ReadingValue
from gateway.rules.base import DeviceView, HouseholdState, Rule
from gateway.rules.counters import (
    Consumption,
    CounterSample,
    consumption,
    continue_run,
    is_counter,
)

log = logging.getLogger(__name__)


class RuleEngine:
    """Runs rules over readings (event time) and scheduler ticks; holds no I/O and no clock."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = list(rules)
        self._households: dict[str, HouseholdState] = {}

    def state(self, household_id: str) -> HouseholdState:
        state = self._households.get(household_id)
        if state is None:
            state = self._households[household_id] = HouseholdState(household_id)
        return state

    def on_reading(self, reading: Reading) -> list[Finding]:
        """Findings for one reading; rules see the state as it was before it."""
        state = self.state(reading.household_id)
        view = state.devices.setdefault(reading.device_id, DeviceView())
        state.consumption = _consumption(view, reading)
        findings: list[Finding] = []
        for rule in self.rules:
            findings.extend(_guarded(rule, partial(rule.on_reading, state, reading)))
        self._remember(state, view, reading)
        state.consumption = None
        return findings

    def on_tick(self, now: datetime) -> list[Finding]:
        findings: list[Finding] = []
        for state in self._households.values():
            for rule in self.rules:
                findings.extend(_guarded(rule, partial(rule.on_tick, state, now)))
        return findings

    def note_device(
        self,
        household_id: str,
        device_id: str,
        *,
        kind: DeviceKind | None = None,
        source: str | None = None,
        registered_at: datetime | None = None,
        last_seen: datetime | None = None,
        values: dict[Metric, tuple[ReadingValue, datetime]] | None = None,
    ) -> None:
        """Record what is known of a device (from the store at start-up, or on registration)."""
        view = self.state(household_id).devices.setdefault(device_id, DeviceView())
        view.kind = kind or view.kind
        view.source = source or view.source
        view.registered_at = registered_at or view.registered_at
        if last_seen is not None and (view.last_seen is None or last_seen > view.last_seen):
            view.last_seen = last_seen
        for metric, (value, ts) in (values or {}).items():
            view.values[metric] = value
            if is_counter(metric) and isinstance(value, float):
                view.counters[metric] = CounterSample(value, ts)

    def alert_opened(self, household_id: str, rule_id: str, device_id: str, at: datetime) -> None:
        self.state(household_id).open_alerts[(rule_id, device_id)] = at

    def alert_closed(self, household_id: str, rule_id: str, device_id: str) -> None:
        self.state(household_id).open_alerts.pop((rule_id, device_id), None)

    @staticmethod
    def _remember(state: HouseholdState, view: DeviceView, reading: Reading) -> None:
        if reading.kind is not None:
            view.kind = reading.kind
        if view.last_seen is None or reading.ts >= view.last_seen:
            view.last_seen = reading.ts
            view.values[reading.metric] = reading.value
        used = state.consumption
        if used is not None and used.amount > 0:
            last = state.last_use.get(used.metric)
            state.last_use[used.metric] = used.until if last is None else max(last, used.until)
        if is_counter(reading.metric) and isinstance(reading.value, float):
            sample = view.counters.get(reading.metric)
            if sample is None or reading.ts > sample.ts:
                view.counters[reading.metric] = CounterSample(reading.value, reading.ts)
                _follow_use_run(view, reading.metric, used)


def _follow_use_run(view: DeviceView, metric: Metric, used: Consumption | None) -> None:
    # A new baseline (no trustworthy consumption) tells nothing of use: the run starts again.
    run = continue_run(view.use_runs.get(metric), used) if used is not None else None
    if run is None:
        view.use_runs.pop(metric, None)
    else:
        view.use_runs[metric] = run


def _consumption(view: DeviceView, reading: Reading) -> Consumption | None:
    if not is_counter(reading.metric) or not isinstance(reading.value, float):
        return None
    previous = view.counters.get(reading.metric)
    return consumption(reading.metric, previous, CounterSample(reading.value, reading.ts))


def _guarded(rule: Rule, run: Callable[[], list[Finding]]) -> list[Finding]:
    # One broken rule must not silence the others.
    try:
        return run()
    except Exception:
        log.exception("rule %s failed; other rules carry on", rule.id)
        return []
