"""The detector: the rule engine with everything that feeds it and everything it decides.

It owns the engine, each household's rule settings (overrides, zone, away periods), the
reload at start-up and the saving of rule state, and it turns findings into alerts with a
guarantee: what the rules remember of an alert (that it is open; that a spell of inactivity
was alerted) changes only with the transaction that stores the alert. A write that fails is
rolled back in memory too, and the tick's writes are retried like ingest batches, so a
database failing in the middle of a tick cannot lose an alert. `run` and `replay` share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.alerts.book import AlertBook, AlertChange, Applied
from gateway.care.households import get_household, household_zones
from gateway.clock import Clock
from gateway.models import DeviceKind, Finding, Metric, Reading, ReadingValue
from gateway.observability import GatewayMetrics
from gateway.rules.activity import ActivityLog, AwayPeriod
from gateway.rules.base import SPELL_KEY
from gateway.rules.catalogue import QuietHoursConfig, RulesConfig, build_rules
from gateway.rules.engine import LEARNING_SPAN, RuleEngine, Undo
from gateway.rules.routine import RoutineSummary, summarize
from gateway.rules.settings import RulesOverrideError, effective_rules
from gateway.store.alerts import active_alerts
from gateway.store.readings import all_device_states, list_devices
from gateway.store.retry import Backoff, is_transient
from gateway.store.rule_settings import (
    AwayRecord,
    all_away,
    all_overrides,
    get_overrides,
    household_away,
    load_rule_state,
    save_rule_state,
)

log = logging.getLogger(__name__)

TICK_SLICE_S = 0.02
"""A tick gives the event loop back after this much work: over a county's households it takes
seconds, and the API and ingest must not wait for it."""
TICK_PAUSE_S = 0.001
"""And waits this long before going on: a timer, not `sleep(0)`, whose wake-up would be queued
ahead of work already waiting (which would then wait for two slices)."""
EVENT_TICK = timedelta(minutes=1)
EVENT_TICKS_AT_ONCE = 24 * 60


class Stage:
    """Changes to the engine's view of alerts made by a transaction not yet committed."""

    def __init__(self, apply: Callable[[AlertChange], Undo]) -> None:
        self._apply = apply
        self._undo: list[Undo] = []

    def apply(self, changes: Iterable[AlertChange]) -> None:
        """Let the rules see these changes now (later findings of the batch depend on them)."""
        self._undo.extend(self._apply(change) for change in changes)

    def rollback(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()


class Detector:
    """Detection for every household this process knows (DESIGN.md §5)."""

    def __init__(
        self,
        db: AsyncEngine,
        rules_config: RulesConfig,
        default_tz: ZoneInfo,
        book: AlertBook,
        clock: Clock,
        metrics: GatewayMetrics,
        on_notifications: Callable[[Iterable[int]], None],
    ) -> None:
        self.db = db
        self.rules_config = rules_config
        self.default_tz = default_tz
        self.book = book
        self.clock = clock
        self.metrics = metrics
        self.on_notifications = on_notifications
        self.engine = RuleEngine(
            build_rules(rules_config), activity=rules_config.activity, tz=default_tz
        )
        self._quiet_hours: dict[str, QuietHoursConfig] = {}
        self._ticking = asyncio.Lock()
        self._stopping = False
        self._event_tick: datetime | None = None
        book.listeners.append(self.alert_changed)

    # --- start-up and settings --------------------------------------------------------------

    async def load(self) -> None:
        """Restore what the rules know from the store: devices, latest values, active alerts,
        each household's settings and the saved activity logs."""
        engine = self.engine
        async with self.db.connect() as conn:
            for device in await list_devices(conn):
                engine.note_device(
                    device.household_id,
                    device.device_id,
                    kind=device.kind,
                    source=device.source,
                    registered_at=device.registered_at,
                    last_seen=device.last_seen,
                )
            for household_id, state in await all_device_states(conn):
                if state.value is not None:
                    engine.note_device(
                        household_id,
                        state.device_id,
                        values={state.metric: (state.value, state.ts)},
                    )
            overrides = await all_overrides(conn)
            away = await all_away(conn, ending_after=self.clock.now() - LEARNING_SPAN)
            for household_id, tz_name in await household_zones(conn):
                self._configure(household_id, overrides.get(household_id), tz_name)
                engine.set_away(household_id, _periods(away.get(household_id, [])))
            for household_id, saved in (await load_rule_state(conn)).items():
                engine.restore_log(household_id, ActivityLog.from_json(saved))
            for alert in await active_alerts(conn):
                engine.alert_opened(
                    alert.household_id,
                    alert.rule_id,
                    alert.device_id,
                    alert.opened_at,
                    alert.evidence,
                )
        engine.changed.clear()  # just loaded: nothing to save

    async def household_changed(self, household_id: str) -> None:
        """Reload a household's zone, rule overrides and away periods (after an API change)."""
        async with self.db.connect() as conn:
            household = await get_household(conn, household_id)
            if household is None:
                return
            saved = await get_overrides(conn, household_id)
            away = await household_away(
                conn, household_id, ending_after=self.clock.now() - LEARNING_SPAN
            )
        self._configure(household_id, saved.overrides if saved else None, household.timezone)
        self.engine.set_away(household_id, _periods(away))

    def device_registered(
        self,
        household_id: str,
        device_id: str,
        *,
        kind: DeviceKind | None,
        source: str | None,
        registered_at: datetime | None = None,
    ) -> None:
        """A device was registered: from its first message, or by an installer."""
        self.engine.note_device(
            household_id, device_id, kind=kind, source=source, registered_at=registered_at
        )

    def quiet_hours(self, household_id: str) -> tuple[QuietHoursConfig, ZoneInfo]:
        """The household's quiet hours for low-severity notifications, and its zone."""
        config = self._quiet_hours.get(household_id, self.rules_config.quiet_hours)
        return config, self.engine.state(household_id).tz

    def routine_summary(self, household_id: str) -> RoutineSummary:
        """What the rules know of a household's activity and learned routine, now."""
        state = self.engine.state(household_id)
        return summarize(state, self.engine.rules_for(household_id), self.clock.now())

    def _configure(
        self, household_id: str, overrides: dict[str, Any] | None, tz_name: str | None
    ) -> None:
        tz = _zone(tz_name) or self.default_tz
        config: RulesConfig | None = None
        if overrides:
            try:
                config = effective_rules(self.rules_config, overrides)
            except RulesOverrideError as exc:
                # Checked when saved; defaults changed since may make old overrides invalid.
                log.error("household %s: rule overrides ignored: %s", household_id, exc)
        if config is None:
            self._quiet_hours.pop(household_id, None)
            self.engine.configure(household_id, tz=tz)
            return
        self._quiet_hours[household_id] = config.quiet_hours
        self.engine.configure(
            household_id, rules=build_rules(config), activity=config.activity, tz=tz
        )

    # --- readings ----------------------------------------------------------------------------

    def evaluate(self, reading: Reading, *, retained: bool = False) -> list[Finding]:
        """The findings of one reading (see RuleEngine.on_reading)."""
        return self.engine.on_reading(reading, retained=retained)

    def current_value(
        self, household_id: str, device_id: str, metric: Metric
    ) -> ReadingValue | None:
        return self.engine.current_value(household_id, device_id, metric)

    @contextlib.contextmanager
    def staging(self) -> Iterator[Stage]:
        """Wrap a transaction that applies findings: the alert changes it stages are taken
        back if the block raises (the transaction did not commit)."""
        stage = Stage(self._apply)
        try:
            yield stage
        except BaseException:
            stage.rollback()
            raise

    def alert_changed(self, change: AlertChange) -> None:
        """A committed change (a listener of the alert book); applying it twice is harmless."""
        self._apply(change)

    def _apply(self, change: AlertChange) -> Undo:
        if change.active:
            return self.engine.alert_opened(
                change.household_id,
                change.rule_id,
                change.device_id,
                change.opened_at,
                change.evidence,
            )
        return self.engine.alert_closed(
            change.household_id,
            change.rule_id,
            change.device_id,
            false_alarm=change.outcome == "well",
            opened_at=change.opened_at,
        )

    # --- time ----------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> None:
        """Run the time-driven rules over every household, in slices that give the event loop
        back, storing each slice's findings before going on."""
        async with self._ticking:
            now = now or self.clock.now()
            started = time.perf_counter()
            slice_ends = started + TICK_SLICE_S
            found: list[Finding] = []
            for household_id in self.engine.household_ids():
                found += self.engine.on_tick(now, (household_id,))
                if time.perf_counter() >= slice_ends:
                    await self._store(found, now)
                    found = []
                    await asyncio.sleep(TICK_PAUSE_S)
                    slice_ends = time.perf_counter() + TICK_SLICE_S
            await self._store(found, now)
            self.metrics.rule_tick.observe(time.perf_counter() - started)

    async def tick_through(self, now: datetime) -> None:
        """On event time: tick at every whole minute the traffic has passed since the last
        call (a jump of more than a day is caught up in one step)."""
        if self._event_tick is None:
            self._event_tick = now
            return
        for _ in range(EVENT_TICKS_AT_ONCE):
            if self._event_tick + EVENT_TICK > now:
                return
            self._event_tick += EVENT_TICK
            await self.tick(self._event_tick)
        self._event_tick = now
        await self.tick(now)

    def stop(self) -> None:
        """Stop retrying failed writes: what a tick could not store is found again next start."""
        self._stopping = True

    async def idle(self) -> None:
        """Return once no tick is running."""
        async with self._ticking:
            pass

    async def _store(self, findings: list[Finding], now: datetime) -> None:
        """Store a tick's findings, waiting out a database that is down or busy."""
        if not findings:
            return
        backoff = Backoff()
        while True:
            try:
                applied = await self._write(findings, now)
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                if not is_transient(exc):
                    await self._store_refused(findings, now)
                    return
                if self._stopping:
                    log.warning("stopping: %s findings not stored, found again", len(findings))
                    return
                log.exception("storing the rules' findings failed; retrying")
                await backoff.wait()
                continue
            self.book.announce(applied.changes)
            self.on_notifications(applied.notification_ids)
            return

    async def _store_refused(self, findings: list[Finding], now: datetime) -> None:
        """The store refused a write for good: household by household, so one household's
        problem cannot keep the others' alerts out."""
        by_household: dict[str, list[Finding]] = defaultdict(list)
        for f in findings:
            by_household[f.household_id].append(f)
        if len(by_household) == 1:
            log.exception(
                "the store refused the alerts of household %s; the next tick tries again",
                findings[0].household_id,
            )
            return
        for group in by_household.values():
            await self._store(group, now)

    async def _write(self, findings: list[Finding], now: datetime) -> Applied:
        with self.staging() as stage:
            async with self.db.begin() as conn:
                applied = await self.book.apply(conn, findings)
                stage.apply(applied.changes)
                # The spell an inactivity alert is about is remembered with the alert.
                alerted = sorted(
                    {
                        c.household_id
                        for c in applied.changes
                        if c.active and SPELL_KEY in c.evidence
                    }
                )
                if alerted:
                    logs = [(h, self.engine.state(h).log.to_json()) for h in alerted]
                    await save_rule_state(conn, logs, now)
        return applied

    async def save_state(self) -> int:
        """Write the activity logs that changed since the last save (every 5 min, and at stop)."""
        changed = self.engine.take_changed()
        if not changed:
            return 0
        try:
            async with self.db.begin() as conn:
                saved = await save_rule_state(
                    conn, [(h, log.to_json()) for h, log in changed], self.clock.now()
                )
        except SQLAlchemyError:
            # Not lost: kept in memory and written with the next save.
            self.engine.changed.update(h for h, _ in changed)
            log.warning("could not save rule state; will retry", exc_info=True)
            return 0
        self.metrics.rule_state_saved.inc(saved)
        return saved


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.error("unknown time zone %r; using the default", name)
        return None


def _periods(records: list[AwayRecord]) -> list[AwayPeriod]:
    return [AwayPeriod(r.starts_at, r.ends_at) for r in records if r.ends_at > r.starts_at]
