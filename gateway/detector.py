"""The detector: the rule engine with everything that feeds it and everything it decides.

It owns the engine, each household's rule settings (overrides, zone, away periods), the
reload at start-up and the saving of rule state, and it turns findings into alerts with a
guarantee: what the rules remember of an alert (that it is open; that a spell of inactivity
was alerted) changes only with the transaction that stores the alert. A write that fails is
rolled back in memory too, and the tick's writes are retried like ingest batches, so a
database failing in the middle of a tick cannot lose an alert. `run` and `replay` share it.

Alone (SQLite, replay) a detector holds every household and ingest hands it the readings it
stores. Sharing (PostgreSQL, several processes) it owns partitions of the households by lease,
reads every process's stored readings back in the order they were stored (`follow`), saves its
state with the reading it is valid up to, and hands partitions over when it stops or dies
(docs/scale-out.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.alerts.book import AlertBook, AlertChange, Applied
from gateway.care.households import get_household, household_zones
from gateway.clock import Clock, EventClock
from gateway.models import DeviceKind, Finding, Metric, Reading, ReadingValue
from gateway.observability import GatewayMetrics
from gateway.readings_feed import ReadingsFeed
from gateway.rules.activity import ActivityLog, AwayPeriod
from gateway.rules.base import SPELL_KEY, HouseholdState
from gateway.rules.catalogue import QuietHoursConfig, RulesConfig, build_rules
from gateway.rules.counters import is_counter
from gateway.rules.engine import LEARNING_SPAN, MessageBatch, RuleEngine, Undo
from gateway.rules.routine import RoutineSummary, summarize
from gateway.rules.settings import RulesOverrideError, effective_rules
from gateway.store.alerts import active_alert_keys, active_alerts, lock_households
from gateway.store.chunks import LOAD_CHUNK, household_ranges
from gateway.store.partitions import PARTITIONS, partition_of, release, renew, save_read_to
from gateway.store.readings import (
    DeviceRecord,
    StoredReading,
    all_device_states,
    device_values,
    devices_by_key,
    list_devices,
)
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
LEASE_TTL = timedelta(seconds=15)
"""A detector that has not renewed its leases for this long is taken for dead."""
LEASE_RENEW_S = 5.0
FOLLOW_S = 0.5
"""How often a detector sharing partitions reads the readings stored since."""
EVENT_TICK = timedelta(minutes=1)
EVENT_TICKS_AT_ONCE = 24 * 60


Stored = tuple[Reading, bool]
"""A reading stored, and whether it is a retained copy of a state (the broker's)."""


def _no_undo() -> None:
    pass


@dataclass(frozen=True, slots=True)
class Judged:
    """A batch's per-message rules (see Detector.judge_messages)."""

    judge: Callable[[Reading, bool], list[Finding]] | None
    follow: Callable[[AlertChange], Undo]


class Stage:
    """Changes to the rules' view of alerts made by a transaction not yet committed."""

    def __init__(self, apply: Callable[[AlertChange], Undo]) -> None:
        self._apply = [apply]
        self._undo: list[Undo] = []

    def follow(self, apply: Callable[[AlertChange], Undo]) -> None:
        """Keep another view in step too (a batch's per-message rules)."""
        self._apply.append(apply)

    def apply(self, changes: Iterable[AlertChange]) -> None:
        """Let the rules see these changes now (later findings of the batch depend on them)."""
        for change in changes:
            self._undo.extend(apply(change) for apply in self._apply)

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
        self.event_ticks = isinstance(clock, EventClock)
        """Time is the readings' (event time): `take` ticks the minutes they pass between them."""
        self.event_ticks_at_once = EVENT_TICKS_AT_ONCE
        """On event time, the most minutes ticked one by one when the readings jump ahead;
        beyond, the rules tick once at the new time (a backlog after days offline)."""
        self.follow_time: Callable[[datetime], None] | None = None
        """Set by a replay, whose manual clock follows event time: called with each tick's
        time, and each reading's before the alerts it changes are stored."""
        self._message_rules = self.engine.message_rule_ids()
        self.owner: str | None = None
        self.partitions: frozenset[int] | None = None
        """The partitions this detector owns; None: every household (one process)."""
        self.feed: ReadingsFeed | None = None
        self._taken_from: dict[int, int] = {}
        """Per partition taken over: the readings id its saved state already covers."""
        self.load_chunk = LOAD_CHUNK
        """Households read at a time when their state is loaded."""
        book.listeners.append(self.alert_changed)

    # --- start-up and settings --------------------------------------------------------------

    async def load(self) -> None:
        """Restore what the rules know from the store: each household's settings, and, for the
        households this detector owns (all of them unless it shares them out by partition),
        devices, latest values, active alerts and the saved activity logs."""
        async with self.db.connect() as conn:
            overrides = await all_overrides(conn)
            away = await all_away(conn, ending_after=self.clock.now() - LEARNING_SPAN)
            for household_id, tz_name in await household_zones(conn):
                self._configure(household_id, overrides.get(household_id), tz_name)
                self.engine.set_away(household_id, _periods(away.get(household_id, [])))
        if self.partitions is None:
            await self._load_households(None)
            self.metrics.partitions_held.set(PARTITIONS)

    async def _load_households(self, partitions: frozenset[int] | None) -> None:
        """Devices, latest values, saved logs and active alerts of the households in these
        partitions (None: every household)."""

        def wanted(household_id: str) -> bool:
            return partitions is None or partition_of(household_id) in partitions

        engine = self.engine
        async with self.db.connect() as conn:
            # A range of households at a time: read whole, a county's rows and saved logs
            # held hundreds of megabytes at once, which the process kept (docs/scale-out.md).
            for within in await household_ranges(conn, self.load_chunk):
                for device in await list_devices(conn, within=within):
                    if wanted(device.household_id):
                        self._note(device)
                for household_id, state in await all_device_states(conn, within=within):
                    if state.value is None or not wanted(household_id):
                        continue
                    if partitions is not None and is_counter(state.metric):
                        # Taken over: the totals saved with the log, which the readings
                        # stored since (read back next) continue from; these are newer.
                        continue
                    engine.note_device(
                        household_id,
                        state.device_id,
                        values={state.metric: (state.value, state.ts)},
                    )
                for household_id, saved in (await load_rule_state(conn, within=within)).items():
                    if wanted(household_id):
                        engine.restore_log(household_id, ActivityLog.from_json(saved))
                        if partitions is not None:
                            engine.restore_counters(household_id, saved)
            for alert in await active_alerts(conn):
                if wanted(alert.household_id):
                    engine.alert_opened(
                        alert.household_id,
                        alert.rule_id,
                        alert.device_id,
                        alert.opened_at,
                        alert.evidence,
                    )
        if partitions is None:
            engine.changed.clear()  # just loaded: nothing to save
        else:
            engine.changed.difference_update(
                h for h in list(engine.changed) if partition_of(h) in partitions
            )

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

    def _note(self, device: DeviceRecord) -> None:
        """What the store says of a device: kind, source, registration, when last heard."""
        self.engine.note_device(
            device.household_id,
            device.device_id,
            kind=device.kind,
            source=device.source,
            registered_at=device.registered_at,
            last_seen=device.last_seen,
        )

    def quiet_hours(self, household_id: str) -> tuple[QuietHoursConfig, ZoneInfo]:
        """The household's quiet hours for low-severity notifications, and its zone."""
        config = self._quiet_hours.get(household_id, self.rules_config.quiet_hours)
        return config, self.engine.state(household_id).tz

    async def routine_summary(self, household_id: str) -> RoutineSummary:
        """What the rules know of a household's activity and learned routine, now. A household
        another process's detector owns is summed up from the state that detector last saved
        (at most 5 minutes old)."""
        state = self.engine.state(household_id)
        if not self.owns(household_id):
            async with self.db.connect() as conn:
                saved = (await load_rule_state(conn, household_id)).get(household_id)
            log = ActivityLog.from_json(saved) if saved is not None else ActivityLog()
            log.away = state.log.away
            state = HouseholdState(
                household_id,
                tz=state.tz,
                activity_config=state.activity_config,
                rules=state.rules,
                log=log,
            )
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

    async def judge_messages(self, conn: AsyncConnection, stored: Sequence[Stored]) -> Judged:
        """The per-message rules' findings of a batch's stored readings (smoke, a call, a
        fall, vitals, battery), judged from the database in the caller's transaction, before
        it updates the devices' latest values: another process may have stored the call a
        cancel withdraws, or the test flag a smoke value comes with.

        Returns a function judging one reading (None for readings no such rule looks at) and
        how to keep the batch's view in step with the alert changes it applies."""
        engine = self.engine
        devices = {
            (r.household_id, r.device_id)
            for r, _ in stored
            if engine.watches_per_message(r.household_id, r.metric)
        }
        if not devices:
            return Judged(None, lambda change: _no_undo)
        households = {h for h, _ in devices}
        await lock_households(conn, households)
        alerts = await active_alert_keys(conn, households, self._message_rules)
        batch = MessageBatch(engine, alerts, await device_values(conn, devices))

        def judge(reading: Reading, retained: bool) -> list[Finding]:
            if (reading.household_id, reading.device_id) not in devices:
                return []
            return batch.judge(reading, retained=retained)

        def follow(change: AlertChange) -> Undo:
            if change.active:
                return batch.opened(
                    change.household_id, change.rule_id, change.device_id, change.opened_at
                )
            return batch.closed(change.household_id, change.rule_id, change.device_id)

        return Judged(judge, follow)

    async def take(self, readings: Sequence[Stored]) -> None:
        """The rules over time hear of stored readings (each with whether it is a retained
        copy), in order, and their findings are stored.

        On event time the minutes the readings pass are ticked between them: the tick of
        10:00 runs after the readings of 09:59 and before those of 10:00, however the readings
        were batched (a backlog after a restart, a replay), as it would have live.
        """
        if self._event_tick is None and isinstance(self.clock, EventClock):
            # Ticks on event time start from the first reading, not from the newest of the
            # first batch: a batch spanning hours would skip its hours' ticks.
            first = min((r.ts for r, retained in readings if not retained), default=None)
            if first is not None:
                self._event_tick = first
        if not self.event_ticks:
            await self._take(readings)
            return
        start = 0
        for i, (reading, retained) in enumerate(readings):
            due = self._event_tick
            if not retained and due is not None and reading.ts >= due + EVENT_TICK:
                await self._take(readings[start:i])
                start = i
                await self._tick_through(reading.ts)
        await self._take(readings[start:])

    async def _take(self, readings: Sequence[Stored]) -> None:
        """Each reading's findings are applied before the next is judged, in one transaction
        opened at the first finding, so a later reading sees what an earlier one changed. If
        that transaction fails, the findings are stored again, with retries, as a tick's are.
        """
        found: list[Finding] = []
        applied = Applied()
        try:
            with self.staging() as stage:
                async with contextlib.AsyncExitStack() as stack:
                    conn: AsyncConnection | None = None
                    for reading, retained in readings:
                        findings = self.engine.on_activity(reading, retained=retained)
                        if not findings:
                            continue
                        found += findings
                        if conn is None:
                            conn = await stack.enter_async_context(self.db.begin())
                        if self.follow_time is not None:
                            self.follow_time(reading.ts)
                        done = await self.book.apply(conn, findings)
                        stage.apply(done.changes)
                        applied.notification_ids += done.notification_ids
                        applied.changes += done.changes
        except (SQLAlchemyError, OSError, TimeoutError):
            log.warning("storing the rules' findings of a batch failed; retrying", exc_info=True)
            await self._store(found, self.clock.now())
            return
        self.book.announce(applied.changes)
        if applied.notification_ids:
            self.on_notifications(applied.notification_ids)

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

    # --- partitions: several processes (DESIGN.md §9) -------------------------------------------

    def share_out(self, owner: str) -> None:
        """Own only the partitions this process holds by lease (renewed by `share`), and hear
        of stored readings from the database (`follow`), whichever process stored them."""
        self.owner = owner
        self.partitions = frozenset()

    def owns(self, household_id: str) -> bool:
        return self.partitions is None or partition_of(household_id) in self.partitions

    async def share(self) -> None:
        """Renew this detector's leases: take over the partitions it gained (their state as
        last saved, then the readings stored since), hand back those beyond its fair share,
        and forget those another detector took over."""
        if self.owner is None:
            return
        async with self._ticking:
            held = self.partitions or frozenset()
            async with self.db.begin() as conn:
                renewal = await renew(conn, self.owner, held, wall_now(), LEASE_TTL)
            if renewal.lost:
                log.warning(
                    "partitions %s were taken over by another detector", sorted(renewal.lost)
                )
                self._drop(renewal.lost)
            if renewal.surplus:
                await self._hand_back(renewal.surplus)
            if renewal.gained - renewal.surplus:
                await self._take_over(renewal.gained - renewal.surplus, renewal.held)
            self.metrics.partitions_held.set(len(self.partitions or ()))

    async def follow(self) -> int:
        """Take the readings stored since the last call (by any process) of the households this
        detector owns; returns how many readings were read."""
        async with self._ticking:
            if self.feed is None or not self.partitions:
                return 0
            if isinstance(self.clock, EventClock):
                back = await self.feed.read()
                # Event time is the stream's: every reading moves it, whoever owns it.
                for r in back.readings:
                    if not r.retained:
                        self.clock.observe(r.reading.ts)
            else:
                back = await self.feed.read(keep=self._owns)
            await self._take_stored([r for r in back.readings if self._covers(r)])
            self.metrics.detector_gaps.set(self.feed.gaps)
            return len(back.ids)

    async def resign(self) -> None:
        """An orderly stop: save every owned partition's state and hand them all back, so the
        other detectors take them over at once."""
        if self.owner is None:
            return
        async with self._ticking:
            await self._save(list(self.engine.take_changed()))
            async with self.db.begin() as conn:
                await release(conn, self.owner, None)
            self.partitions = frozenset()

    def _owns(self, household_id: str) -> bool:
        return self.partitions is not None and partition_of(household_id) in self.partitions

    def _covers(self, stored: StoredReading) -> bool:
        partition = partition_of(stored.reading.household_id)
        if self.partitions is None or partition not in self.partitions:
            return False
        return stored.id > self._taken_from.get(partition, 0)

    async def _take_over(self, gained: frozenset[int], held: dict[int, int]) -> None:
        await self._load_households(gained)
        for p in gained:
            self._taken_from[p] = held[p]
        start = min(held[p] for p in gained)
        if self.feed is None:
            self.feed = ReadingsFeed(self.db, after=start)
        behind = self.feed.read_to
        self.partitions = (self.partitions or frozenset()) | gained
        log.info("took over partitions %s (from reading %s)", sorted(gained), start)
        if start < behind:
            rows = await self.feed.between(
                start, behind, keep=lambda household: partition_of(household) in gained
            )
            await self._take_stored([r for r in rows if self._covers(r)])

    async def _hand_back(self, partitions: frozenset[int]) -> None:
        """Save the state of these partitions and release them (those this detector has in
        memory; one held under its name from before a restart is released as saved)."""
        assert self.owner is not None
        known = partitions & (self.partitions or frozenset())
        households = [h for h in self.engine.household_ids() if partition_of(h) in known]
        logs = ((h, self.engine.saved_state(h)) for h in households)
        async with self.db.begin() as conn:
            await save_rule_state(conn, logs, self.clock.now())
            await save_read_to(conn, self.owner, known, self._read_to())
            await release(conn, self.owner, partitions)
        self._drop(partitions)
        log.info("handed back partitions %s", sorted(partitions))

    def _drop(self, partitions: frozenset[int]) -> None:
        self.partitions = (self.partitions or frozenset()) - partitions
        for household_id in self.engine.household_ids():
            if partition_of(household_id) in partitions:
                self.engine.forget(household_id)
        for p in partitions:
            self._taken_from.pop(p, None)

    def _read_to(self) -> int:
        return self.feed.taken_to if self.feed is not None else 0

    async def _take_stored(self, rows: Sequence[StoredReading]) -> None:
        """Take readings read back from the table, learning first of devices registered by
        another process (their kind and source set how long they may stay silent)."""
        if not rows:
            return
        unknown = {
            (r.reading.household_id, r.reading.device_id)
            for r in rows
            if r.reading.device_id not in self.engine.state(r.reading.household_id).devices
        }
        if unknown:
            async with self.db.connect() as conn:
                for device in await devices_by_key(conn, unknown):
                    self._note(device)
        await self.take([(r.reading, r.retained) for r in rows])

    # --- time ----------------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> None:
        """Run the time-driven rules over every household, in slices that give the event loop
        back, storing each slice's findings before going on."""
        async with self._ticking:
            await self._tick(now or self.clock.now())

    async def _tick(self, now: datetime) -> None:
        if self.follow_time is not None:
            self.follow_time(now)
        started = time.perf_counter()
        slice_ends = started + TICK_SLICE_S
        found: list[Finding] = []
        if self.partitions is not None:
            await self._refresh_alerts()
        for household_id in self.engine.household_ids():
            if not self.owns(household_id):
                continue
            found += self.engine.on_tick(now, (household_id,))
            if time.perf_counter() >= slice_ends:
                await self._store(found, now)
                found = []
                await asyncio.sleep(TICK_PAUSE_S)
                slice_ends = time.perf_counter() + TICK_SLICE_S
        await self._store(found, now)
        self.metrics.rule_tick.observe(time.perf_counter() - started)

    def tick_from(self, at: datetime) -> None:
        """On event time, tick at every whole minute after `at` (a replay: at the minutes of
        the clock, from the one its recording starts in)."""
        self._event_tick = at

    @property
    def ticked_through(self) -> datetime | None:
        """On event time, the time the rules have been ticked up to (None: not started)."""
        return self._event_tick

    async def tick_through(self, now: datetime) -> None:
        """On event time: tick at every whole minute the traffic has passed since the last
        call (a jump of more than a day is caught up in one step)."""
        async with self._ticking:
            await self._tick_through(now)

    async def _tick_through(self, now: datetime) -> None:
        if self._event_tick is None:
            self._event_tick = now
            return
        for _ in range(self.event_ticks_at_once):
            if self._event_tick + EVENT_TICK > now:
                return
            self._event_tick += EVENT_TICK
            await self._tick(self._event_tick)
        self._event_tick = now
        await self._tick(now)

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
                    logs = [(h, self.engine.saved_state(h)) for h in alerted]
                    await save_rule_state(conn, logs, now)
        return applied

    async def save_state(self) -> int:
        """Write the activity logs that changed since the last save (every 5 min, and at stop),
        and with them, for a detector sharing partitions, the reading they are valid up to."""
        if self.owner is not None:
            async with self._ticking:
                return await self._save(self.engine.take_changed())
        return await self._save(self.engine.take_changed())

    async def _save(self, changed: list[tuple[str, ActivityLog]]) -> int:
        if not changed and self.owner is None:
            return 0
        try:
            async with self.db.begin() as conn:
                # Each household's document is made as its chunk is written (see
                # save_rule_state); a household that changes meanwhile is saved as it is then,
                # and again with the next save, as it is among the changed again.
                saved = await save_rule_state(
                    conn, ((h, self.engine.saved_state(h)) for h, _ in changed), self.clock.now()
                )
                if self.owner is not None and self.partitions:
                    await save_read_to(conn, self.owner, self.partitions, self._read_to())
        except SQLAlchemyError:
            # Not lost: kept in memory and written with the next save.
            self.engine.changed.update(h for h, _ in changed)
            log.warning("could not save rule state; will retry", exc_info=True)
            return 0
        self.metrics.rule_state_saved.inc(saved)
        return saved

    async def _refresh_alerts(self) -> None:
        """The owned households' active alerts as the database has them: a person may have
        closed one through another process, or another process opened one."""
        owned = [h for h in self.engine.household_ids() if self.owns(h)]
        if not owned:
            return
        async with self.db.connect() as conn:
            found = await active_alert_keys(conn, owned, None)
        for household_id in owned:
            self.engine.replace_alerts(household_id, found.get(household_id, {}))


def wall_now() -> datetime:
    """Leases run on the machines' clocks, whatever clock the rules follow."""
    return datetime.now(UTC)


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
