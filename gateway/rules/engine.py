"""The rule engine: keeps each household's state and runs every rule on readings and ticks."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from gateway.models import (
    HOUSEHOLD_DEVICE,
    DeviceKind,
    EvidenceValue,
    Finding,
    FindingAction,
    Metric,
    Reading,
    ReadingValue,
)
from gateway.rules.activity import ActivityConfig, ActivityLog, AwayPeriod, classify
from gateway.rules.base import (
    DEFAULT_TZ,
    SPELL_KEY,
    DeviceView,
    HouseholdState,
    Rule,
    RuleSet,
    Settling,
    alerted_key,
)
from gateway.rules.counters import (
    Consumption,
    CounterSample,
    consumption,
    continue_run,
    is_counter,
)
from gateway.rules.home import ApplianceLeftOn

log = logging.getLogger(__name__)

_K = TypeVar("_K")
_V = TypeVar("_V")

COUNTERS_KEY = "counters"
LEARNING_SPAN = timedelta(days=30)
"""Away periods are kept this long after they end: learning leaves those days out."""

Undo = Callable[[], None]
"""Puts back what a change to the engine's view of alerts replaced (a rolled-back write)."""


class RuleEngine:
    """Runs rules over readings (event time) and scheduler ticks; holds no I/O and no clock."""

    def __init__(
        self,
        rules: Iterable[Rule],
        *,
        activity: ActivityConfig | None = None,
        tz: ZoneInfo = DEFAULT_TZ,
    ) -> None:
        """`rules` and `activity` are the defaults; `configure` gives a household its own."""
        self._default = RuleSet.of(rules)
        self.activity = activity or ActivityConfig()
        self.tz = tz
        self._households: dict[str, HouseholdState] = {}
        self.changed: set[str] = set()
        """Households whose activity log changed since `take_changed` (to be saved)."""

    def state(self, household_id: str) -> HouseholdState:
        state = self._households.get(household_id)
        if state is None:
            household_id = sys.intern(household_id)  # one copy, shared with ingest's caches
            state = HouseholdState(household_id, tz=self.tz, activity_config=self.activity)
            self._households[household_id] = state
        return state

    def households(self) -> Iterable[HouseholdState]:
        return self._households.values()

    def household_ids(self) -> list[str]:
        """Every household the engine knows, as a list (safe to walk while readings arrive)."""
        return list(self._households)

    def current_value(
        self, household_id: str, device_id: str, metric: Metric
    ) -> ReadingValue | None:
        """The device's latest value of `metric`, if the engine has one."""
        state = self._households.get(household_id)
        view = state.devices.get(device_id) if state is not None else None
        return view.values.get(metric) if view is not None else None

    def configure(
        self,
        household_id: str,
        *,
        rules: Sequence[Rule] | None = None,
        activity: ActivityConfig | None = None,
        tz: ZoneInfo | None = None,
    ) -> None:
        """Give a household its own rules (None: the defaults), activity settings and zone."""
        state = self.state(household_id)
        state.unsettle()
        state.rules = RuleSet.of(rules) if rules is not None else None
        state.activity_config = activity or self.activity
        state.tz = tz or self.tz

    def set_away(self, household_id: str, periods: Iterable[AwayPeriod]) -> None:
        """The household's away periods (all of them that matter: current, future, recent)."""
        state = self.state(household_id)
        state.unsettle()
        state.log.away = sorted(periods, key=lambda p: p.start)

    def restore_log(self, household_id: str, log: ActivityLog) -> None:
        """The activity log saved before a restart (away periods come from their own table)."""
        state = self.state(household_id)
        state.unsettle()
        log.away = state.log.away
        state.log = log

    def forget(self, household_id: str) -> None:
        """Another detector owns the household now: keep only its settings."""
        old = self._households.get(household_id)
        if old is None:
            return
        state = HouseholdState(
            household_id, tz=old.tz, activity_config=old.activity_config, rules=old.rules
        )
        state.log.away = old.log.away
        self._households[household_id] = state
        self.changed.discard(household_id)

    def replace_alerts(self, household_id: str, active: Mapping[tuple[str, str], datetime]) -> None:
        """The household's active alerts as the database has them now: (rule id, device id)
        -> opened at. What the rules remember of alerted spells is kept."""
        state = self.state(household_id)
        state.unsettle()
        alerts = state.open_alerts
        alerts.clear()
        alerts.update(active)

    def saved_state(self, household_id: str) -> dict[str, Any]:
        """What is saved of a household: its activity log, and the meter totals it was
        last judged against (a detector taking it over goes on from those)."""
        state = self.state(household_id)
        counters = {
            device_id: {m.value: [c.total, c.ts.isoformat()] for m, c in view.counters.items()}
            for device_id, view in state.devices.items()
            if view.counters
        }
        return {**state.log.to_json(), COUNTERS_KEY: counters}

    def restore_counters(self, household_id: str, saved: Mapping[str, Any]) -> None:
        """The meter totals saved with the household's log (see `saved_state`)."""
        devices = saved.get(COUNTERS_KEY)
        if not isinstance(devices, dict):
            return
        state = self.state(household_id)
        for device_id, counters in devices.items():
            view = _view(state, str(device_id))
            try:
                for name, (total, ts) in counters.items():
                    view.set_counter(
                        Metric(name), CounterSample(float(total), datetime.fromisoformat(ts))
                    )
            except (TypeError, ValueError, AttributeError):
                log.warning("household %s: saved meter totals unreadable", household_id)

    def take_changed(self) -> list[tuple[str, ActivityLog]]:
        """The households whose activity log changed since the last call, with their logs."""
        out = [(h, self._households[h].log) for h in sorted(self.changed)]
        self.changed.clear()
        return out

    def on_reading(self, reading: Reading, *, retained: bool = False) -> list[Finding]:
        """Findings for one reading from every rule: `on_message` then `on_activity`."""
        found = self.on_message(reading, retained=retained)
        return found + self.on_activity(reading, retained=retained)

    def on_message(self, reading: Reading, *, retained: bool = False) -> list[Finding]:
        """Findings of the per-message rules (smoke, a call, a fall, vitals, battery) judging
        the reading against the engine's own state. The service judges them per batch, from
        the database, with `MessageBatch`.

        A `retained` reading is the broker's stored copy of a state, stamped with its arrival
        time: the rules judge it, but it is no sign that the device or the elder is alive now.
        """
        state = self.state(reading.household_id)
        return _judge(state, self._set_of(state).message_rules(reading.metric), reading, retained)

    def rule_set(self, household_id: str) -> RuleSet:
        """The household's rules (its own, or the defaults), indexed by metric."""
        return self._set_of(self.state(household_id))

    def watches_per_message(self, household_id: str, metric: Metric) -> bool:
        """Whether a per-message rule of the household looks at readings of `metric`."""
        return self.rule_set(household_id).watches_per_message(metric)

    def message_rule_ids(self) -> frozenset[str]:
        """The ids of the per-message rules of the catalogue."""
        return frozenset(r.id for r in self._default.rules if r.per_message)

    def on_activity(self, reading: Reading, *, retained: bool = False) -> list[Finding]:
        """Findings of the rules over time for one reading (stored, in the order the detector
        takes them), and what the household's activity log keeps of it.

        A `retained` reading updates the device's values and the rules judge it (a last will
        says a device went offline), but it is no sign of life and no use of water or power.
        """
        state = self.state(reading.household_id)
        view = _view(state, reading.device_id)
        rules = self._set_of(state).activity_rules(reading.metric)
        if retained:
            return self._on_retained(state, view, reading, rules)
        state.consumption = _consumption(view, reading)
        state.activity_now = classify(
            reading,
            state.consumption,
            state.activity_config,
            reports_power=Metric.POWER_W in view.values,
        )
        findings: list[Finding] = []
        for rule in rules:
            findings.extend(_guarded(rule, state, reading))
        self._remember(state, view, reading)
        if reading.metric is Metric.POWER_W:
            _follow_heavy_load(state, self._set_of(state).rules, reading)
        state.log.record(
            state.activity_now, reading, state.consumption, state.tz, state.activity_config
        )
        self.changed.add(state.household_id)
        state.consumption = None
        state.activity_now = None
        return findings

    def _on_retained(
        self, state: HouseholdState, view: DeviceView, reading: Reading, rules: Sequence[Rule]
    ) -> list[Finding]:
        findings = _judge(state, rules, reading, retained=True)
        if reading.kind is not None and reading.kind is not view.kind:
            view.kind = reading.kind
            state.unsettle()
        view.set_value(reading.metric, reading.value)
        return findings

    def on_tick(self, now: datetime, household_ids: Iterable[str] | None = None) -> list[Finding]:
        """Findings of the time-driven rules at `now`, for these households (default: all).

        Nothing here records that an alert opened: that is `alert_opened`'s job, once the
        alert is stored, so a write that fails leaves the rules ready to find it again.
        """
        ids = self._households.keys() if household_ids is None else household_ids
        findings: list[Finding] = []
        for household_id in ids:
            state = self._households.get(household_id)
            if state is not None:
                findings.extend(self._tick(state, now))
        return findings

    def _tick(self, state: HouseholdState, now: datetime) -> list[Finding]:
        findings: list[Finding] = []
        # One "no sign of life" alert per household: none opens while one is open, and of
        # rules falling due on the same tick (they cannot see each other's findings) the
        # first wins.
        household_alert = any(d == HOUSEHOLD_DEVICE for _, d in state.open_alerts)
        for rule, settling in self._set_of(state).tickers:
            quiet = state.quiet.get(rule.id) if state.quiet else None
            if quiet is not None and quiet[0] <= now < quiet[1]:
                continue  # it said it would find nothing before then
            found = _guarded_tick(rule, state, now)
            if not found and settling is not None:
                _settle(state, settling, now)
            if household_alert:
                found = [f for f in found if not _opens_household_alert(f)]
            household_alert = household_alert or any(map(_opens_household_alert, found))
            findings.extend(found)
        if state.log.away and state.log.away[0].end < now - LEARNING_SPAN:
            state.log.forget_away_before(now - LEARNING_SPAN)
        return findings

    def rules_for(self, household_id: str) -> list[Rule]:
        """The rules a household runs with (its own, or the defaults)."""
        return list(self._set_of(self.state(household_id)).rules)

    def _set_of(self, state: HouseholdState) -> RuleSet:
        return self._default if state.rules is None else state.rules

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
        state = self.state(household_id)
        state.unsettle()
        view = _view(state, device_id)
        view.kind = kind or view.kind
        # One copy of each source's name, not one per device read from the store.
        view.source = sys.intern(source) if source else view.source
        view.registered_at = registered_at or view.registered_at
        if last_seen is not None and (view.last_seen is None or last_seen > view.last_seen):
            view.last_seen = last_seen
        if view.last_seen is not None:
            view.registered_at = None  # read only while a device has never been heard
        for metric, (value, ts) in (values or {}).items():
            view.set_value(metric, value)
            if is_counter(metric) and isinstance(value, float):
                view.set_counter(metric, CounterSample(value, ts))

    def alert_opened(
        self,
        household_id: str,
        rule_id: str,
        device_id: str,
        at: datetime,
        evidence: Mapping[str, EvidenceValue] | None = None,
    ) -> Undo:
        """An alert is active (stored). Returns how to take that back if its write fails.

        An inactivity alert's evidence names its spell: the same spell never alerts twice,
        even after a person closes the alert.
        """
        state = self.state(household_id)
        state.unsettle()
        key = (rule_id, device_id)
        had = state.open_alerts.get(key)
        state.open_alerts[key] = at
        spell = (evidence or {}).get(SPELL_KEY)
        if not isinstance(spell, str):
            return partial(_put_back_unsettled, state, key, had)
        mark = alerted_key(rule_id, device_id)
        marked = state.log.alerted.get(mark)
        state.log.alerted[mark] = spell
        self.changed.add(household_id)

        def undo() -> None:
            _put_back_unsettled(state, key, had)
            _put_back(state.log.alerted, mark, marked)

        return undo

    def alert_closed(
        self,
        household_id: str,
        rule_id: str,
        device_id: str,
        *,
        false_alarm: bool = False,
        opened_at: datetime | None = None,
    ) -> Undo:
        """An alert is no longer active. Returns how to take that back if its write fails.

        `false_alarm`: the elder answered a check-in call "I am well"; the household's log keeps
        when (the feedback inactivity detection learns each home's quiet spells from).
        """
        state = self.state(household_id)
        state.unsettle()
        key = (rule_id, device_id)
        had = state.open_alerts.pop(key, None)
        if false_alarm and opened_at is not None:
            state.log.note_false_alarm(rule_id, opened_at)
            self.changed.add(household_id)
        return partial(_put_back_unsettled, state, key, had)

    @staticmethod
    def _remember(state: HouseholdState, view: DeviceView, reading: Reading) -> None:
        if reading.kind is not None and reading.kind is not view.kind:
            view.kind = reading.kind
            state.unsettle()  # how long the device may stay silent depends on its kind
        elif state.quiet and _alerted_about(state, reading.device_id):
            state.unsettle()  # heard again: its next silence may come sooner than the quiet
        if view.last_seen is None or reading.ts >= view.last_seen:
            view.last_seen = reading.ts
            view.set_value(reading.metric, reading.value)
        used = state.consumption
        if used is not None and used.amount > 0:
            last = state.last_use.get(used.metric)
            state.last_use[used.metric] = used.until if last is None else max(last, used.until)
        if is_counter(reading.metric) and isinstance(reading.value, float):
            sample = view.counters.get(reading.metric)
            if sample is None or reading.ts > sample.ts:
                view.set_counter(reading.metric, CounterSample(reading.value, reading.ts))
                _follow_use_run(view, reading.metric, used)


class MessageBatch:
    """The per-message rules over one batch of stored readings, judged from what the database
    says now, not from what this process happened to see (DESIGN.md §9: any process may take
    any message of a household).

    Each household judged gets a state of its own for the batch: its active alerts of these
    rules and its devices' latest values, both as stored before the batch, then kept in step
    with the batch's readings and alert changes in order (a detector's test flag before its
    smoke value; a cancel after its call in the same batch).
    """

    def __init__(
        self,
        engine: RuleEngine,
        alerts: Mapping[str, Mapping[tuple[str, str], datetime]],
        values: Mapping[tuple[str, str], Mapping[Metric, tuple[ReadingValue, datetime]]],
    ) -> None:
        self._engine = engine
        self._alerts = alerts
        self._values = values
        self._states: dict[str, HouseholdState] = {}

    def judge(self, reading: Reading, *, retained: bool = False) -> list[Finding]:
        """The findings of one reading; then its value is the device's latest."""
        state = self._state(reading.household_id)
        view = state.devices.get(reading.device_id)
        if view is None:
            stored = self._values.get(_key(reading), {})
            view = DeviceView(
                values={metric: value for metric, (value, _) in stored.items()},
                value_times={metric: ts for metric, (_, ts) in stored.items()},
            )
            state.devices[reading.device_id] = view
        rules = self._engine.rule_set(reading.household_id).message_rules(reading.metric)
        findings = _judge(state, rules, reading, retained)
        if retained or view.last_seen is None or reading.ts >= view.last_seen:
            view.set_value(reading.metric, reading.value)
            view.last_seen = (
                reading.ts if view.last_seen is None else max(view.last_seen, reading.ts)
            )
        return findings

    def opened(self, household_id: str, rule_id: str, device_id: str, at: datetime) -> Undo:
        alerts = self._state(household_id).open_alerts
        key = (rule_id, device_id)
        had = alerts.get(key)
        alerts[key] = at
        return partial(_put_back, alerts, key, had)

    def closed(self, household_id: str, rule_id: str, device_id: str) -> Undo:
        alerts = self._state(household_id).open_alerts
        key = (rule_id, device_id)
        had = alerts.pop(key, None)
        return partial(_put_back, alerts, key, had)

    def _state(self, household_id: str) -> HouseholdState:
        state = self._states.get(household_id)
        if state is None:
            known = self._engine.state(household_id)
            state = HouseholdState(
                household_id,
                open_alerts=dict(self._alerts.get(household_id, {})),
                tz=known.tz,
                activity_config=known.activity_config,
                rules=known.rules,
            )
            self._states[household_id] = state
        return state


def _view(state: HouseholdState, device_id: str) -> DeviceView:
    """The household's view of the device, made if it has none (its id kept as one copy of
    each id: device ids repeat across households, "water-1" in each)."""
    view = state.devices.get(device_id)
    if view is None:
        view = state.devices[sys.intern(device_id)] = DeviceView()
    return view


def _key(reading: Reading) -> tuple[str, str]:
    return (reading.household_id, reading.device_id)


def _judge(
    state: HouseholdState, rules: Sequence[Rule], reading: Reading, retained: bool
) -> list[Finding]:
    if not rules:
        return []
    findings: list[Finding] = []
    state.retained_now = retained
    try:
        for rule in rules:
            findings.extend(_guarded(rule, state, reading))
    finally:
        state.retained_now = False
    return findings


def _alerted_about(state: HouseholdState, device_id: str) -> bool:
    """Whether the household has an alert open about this device, or one about its silence
    was closed (both small: a household's alerts)."""
    suffix = "/" + device_id
    return any(d == device_id for _, d in state.open_alerts) or any(
        key.endswith(suffix) for key in state.log.alerted
    )


def _settle(state: HouseholdState, rule: Settling, now: datetime) -> None:
    try:
        until = rule.quiet_until(state, now)
    except Exception:
        log.exception("rule %s failed; other rules carry on", rule.id)
        until = None
    if until is not None and until > now:
        if state.quiet is None:
            state.quiet = {}
        state.quiet[rule.id] = (now, until)
    elif state.quiet:
        state.quiet.pop(rule.id, None)


def _put_back_unsettled(
    state: HouseholdState, key: tuple[str, str], value: datetime | None
) -> None:
    state.unsettle()
    _put_back(state.open_alerts, key, value)


def _put_back(mapping: dict[_K, _V], key: _K, value: _V | None) -> None:
    if value is None:
        mapping.pop(key, None)
    else:
        mapping[key] = value


def _opens_household_alert(f: Finding) -> bool:
    return f.action is FindingAction.OPEN and f.device_id == HOUSEHOLD_DEVICE


def _follow_heavy_load(state: HouseholdState, rules: Sequence[Rule], reading: Reading) -> None:
    """Keep when each device's current heavy load began (for appliance_left_on)."""
    rule = next((r for r in rules if isinstance(r, ApplianceLeftOn)), None)
    value = reading.value
    if rule is None or not isinstance(value, int | float) or isinstance(value, bool):
        return
    runs = state.log.heavy_since
    if value > rule.config.heavy_w:
        if reading.device_id not in runs or reading.ts < runs[reading.device_id]:
            runs[reading.device_id] = reading.ts
    elif reading.device_id in runs and reading.ts >= runs[reading.device_id]:
        del runs[reading.device_id]


def _follow_use_run(view: DeviceView, metric: Metric, used: Consumption | None) -> None:
    # A new baseline (no trustworthy consumption) tells nothing of use: the run starts again.
    view.set_use_run(
        metric, continue_run(view.use_runs.get(metric), used) if used is not None else None
    )


def _consumption(view: DeviceView, reading: Reading) -> Consumption | None:
    if not is_counter(reading.metric) or not isinstance(reading.value, float):
        return None
    previous = view.counters.get(reading.metric)
    return consumption(reading.metric, previous, CounterSample(reading.value, reading.ts))


def _guarded(rule: Rule, state: HouseholdState, reading: Reading) -> list[Finding]:
    # One broken rule must not silence the others.
    try:
        return rule.on_reading(state, reading)
    except Exception:
        log.exception("rule %s failed; other rules carry on", rule.id)
        return []


def _guarded_tick(rule: Rule, state: HouseholdState, now: datetime) -> list[Finding]:
    try:
        return rule.on_tick(state, now)
    except Exception:
        log.exception("rule %s failed; other rules carry on", rule.id)
        return []
