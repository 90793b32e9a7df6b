"""The rule engine: keeps each household's state and runs every rule on readings and ticks."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from gateway.models import DeviceKind, Finding, Metric, Reading, ReadingValue
from gateway.rules.base import DeviceView, HouseholdState, Rule

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
        findings: list[Finding] = []
        for rule in self.rules:
            findings.extend(_guarded(rule, partial(rule.on_reading, state, reading)))
        self._remember(state, reading)
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
        kind: DeviceKind | None,
        last_seen: datetime | None,
        values: dict[Metric, ReadingValue] | None = None,
    ) -> None:
        """Restore what is known of a device (at start-up, from the store)."""
        view = self.state(household_id).devices.setdefault(device_id, DeviceView())
        view.kind = kind or view.kind
        view.last_seen = last_seen
        view.values.update(values or {})

    def alert_opened(self, household_id: str, rule_id: str, device_id: str, at: datetime) -> None:
        self.state(household_id).open_alerts[(rule_id, device_id)] = at

    def alert_closed(self, household_id: str, rule_id: str, device_id: str) -> None:
        self.state(household_id).open_alerts.pop((rule_id, device_id), None)

    @staticmethod
    def _remember(state: HouseholdState, reading: Reading) -> None:
        view = state.devices.setdefault(reading.device_id, DeviceView())
        if reading.kind is not None:
            view.kind = reading.kind
        if view.last_seen is None or reading.ts >= view.last_seen:
            view.last_seen = reading.ts
            view.values[reading.metric] = reading.value


def _guarded(rule: Rule, run: Callable[[], list[Finding]]) -> list[Finding]:
    # One broken rule must not silence the others.
    try:
        return run()
    except Exception:
        log.exception("rule %s failed; other rules carry on", rule.id)
        return []
