"""The flow, written out once, in one transaction per batch of messages:
drop redeliveries -> match source and normalise -> known household -> the household's rate ->
retained state or news -> register devices (within the household's quota) -> store readings
and state -> the rules one message decides (smoke, a call, a fall, vitals, battery), judged from
the database -> alerts. Then the rules over time hear of the stored readings: handed to this
process's detector in memory, or, where several processes share the households (PostgreSQL),
read back from the table by the detector that owns each household (DESIGN.md §9).

Everything a batch changes is committed together, and only then are its messages acknowledged
to the broker, its alert changes announced, its rate spent and its notifications handed to the
dispatcher. If the transaction fails, what the rules were told of the batch's alerts is taken
back with it. A redelivered message changes nothing: its readings are already stored, or the
broker's DUP flag and its packet id say it was committed (gateway/ingest/redelivery.py).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.alerts.book import AlertBook, AlertChange
from gateway.care.directory import HouseholdDirectory
from gateway.clock import Clock, EventClock
from gateway.config import IngestSettings
from gateway.detector import Detector, Stage, Stored
from gateway.expiring import ExpiringKeys
from gateway.ingest.decode import Decoded, decode
from gateway.ingest.limits import (
    HouseholdRate,
    RateWindow,
    carries_alarm,
    device_limit_reason,
    is_alarm,
    rate_time,
)
from gateway.ingest.mqtt import InboundMessage
from gateway.ingest.redelivery import Deliveries, digest
from gateway.ingest.retained import RETAINED_EVENT_REASON, judge_retained
from gateway.ingest.sources import SourceTable
from gateway.models import DeviceKind, Reading
from gateway.observability import GatewayMetrics
from gateway.store.bulk import ReadingKey
from gateway.store.dead_letters import DeadLetter, insert_dead_letters
from gateway.store.deliveries import load_delivery_keys, save_delivery_keys
from gateway.store.readings import (
    NewDevice,
    device_kinds,
    insert_readings,
    reading_key,
    register_devices,
    touch_devices,
    unconfirmed_devices_by_household,
    update_device_state,
)
from gateway.store.retry import Backoff, is_transient

log = logging.getLogger(__name__)

DeviceKey = tuple[str, str]
QUOTA_RECHECK = timedelta(minutes=1)
"""How long a device refused for its household's quota is refused without asking again."""


@dataclass(slots=True)
class BatchResult:
    readings: int = 0
    duplicates: int = 0
    redeliveries: int = 0
    shed: int = 0
    retained: Counter[str] = field(default_factory=Counter)
    """Readings of retained messages by outcome (see gateway.ingest.retained)."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    notification_ids: list[int] = field(default_factory=list)
    changes: list[AlertChange] = field(default_factory=list)
    stored: list[Stored] = field(default_factory=list)
    """The readings stored (not already there), each with whether it is a retained state."""


class Pipeline:
    def __init__(
        self,
        db: AsyncEngine,
        sources: SourceTable,
        detector: Detector,
        book: AlertBook,
        directory: HouseholdDirectory,
        metrics: GatewayMetrics,
        clock: Clock,
        on_notifications: Callable[[Iterable[int]], None],
        *,
        session: str,
        limits: IngestSettings,
    ) -> None:
        """`session` is the MQTT client id, whose packet ids redeliveries are recognised by."""
        self.db = db
        self.sources = sources
        self.detector = detector
        self.book = book
        self.directory = directory
        self.metrics = metrics
        self.clock = clock
        self.on_notifications = on_notifications
        self.session = session
        self.deliveries = Deliveries()
        self.remember_deliveries = True
        """Remember what each batch committed by packet id, to recognise the broker sending it
        again (gateway/ingest/redelivery.py). Off in a replay: no broker, no redeliveries."""
        self.rate = HouseholdRate(limits.household_rate_per_s, limits.household_burst)
        self.device_quota = limits.max_new_devices_per_household
        self.hand_over = True
        """Hand the stored readings to this process's detector (the rules over time) in
        memory. Off where the detector reads them from the database instead (DESIGN §9)."""
        self._kinds: dict[DeviceKey, DeviceKind | None] = {}
        self._over_quota: ExpiringKeys[DeviceKey] = ExpiringKeys(QUOTA_RECHECK)
        """New devices refused for the quota, not counted again for a while."""

    async def load(self, conn: AsyncConnection) -> None:
        """Restore what a restart must not forget: the last batches' delivery keys."""
        self.deliveries.restore(await load_delivery_keys(conn, self.session))

    def device_changed(self, household_id: str, device_id: str, kind: DeviceKind | None) -> None:
        """A device was registered or changed elsewhere (the API): forget the cached kind."""
        self._kinds[(household_id, device_id)] = kind

    async def process_with_retry(self, batch: Sequence[InboundMessage]) -> None:
        """Process a batch until it is stored; a message the store refuses becomes a dead letter.

        A database that is unreachable or busy is waited for (nothing is acknowledged meanwhile).
        A batch the database refuses for good (a constraint, a value it cannot hold) is taken
        apart so that the one message at fault cannot block the stream behind it.
        """
        backoff = Backoff()
        while True:
            try:
                await self.process(batch)
                return
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                if is_transient(exc):
                    log.exception("storing a batch failed; retrying in %.1f s", backoff.delay)
                    await backoff.wait()
                    continue
                if len(batch) == 1:
                    await self._store_refused(batch[0])
                    return
                log.warning("the store refused a batch of %s; retrying one by one", len(batch))
                for message in batch:
                    await self.process_with_retry([message])
                return

    async def _store_refused(self, message: InboundMessage) -> None:
        log.exception("the store refused the message on %s; kept as a dead letter", message.topic)
        letter = DeadLetter(
            message.topic,
            message.payload,
            "store_error",
            "the database refused it",
            message.received_at,
        )
        try:
            async with self.db.begin() as conn:
                await insert_dead_letters(conn, [letter])
        except SQLAlchemyError:
            log.exception("could not keep the dead letter either; dropping %s", message.topic)
        self.metrics.dead_letters.labels("store_error").inc()

    async def process(self, batch: Sequence[InboundMessage]) -> BatchResult:
        """Handle one batch; raises only when the database fails (the caller retries)."""
        result = BatchResult()
        messages = self._without_redeliveries(batch, result)
        decoded = [d for d in (self._decode(m, result) for m in messages) if d is not None]
        unstamped = (
            Deliveries.keys(d.message for d in decoded if d.arrival_stamped)
            if self.remember_deliveries
            else []
        )
        new_kinds: dict[DeviceKey, DeviceKind | None] = {}
        window = self.rate.batch()
        with self.detector.staging() as stage:
            async with self.db.begin() as conn:
                keys = self.deliveries.to_save(unstamped)
                if keys is not None:
                    await save_delivery_keys(conn, self.session, keys, self.clock.now())
                decoded = await self._known_households(conn, decoded, result)
                decoded = [d for d in decoded if self._within_rate(d, window, result)]
                for d in decoded:
                    if d.message.retain:
                        self._judge_retained(d, result)
                readings, states = await self._resolve_devices(conn, decoded, new_kinds, result)
                await insert_dead_letters(conn, result.dead_letters)
                await self._store_and_evaluate(conn, readings, states, result, stage)
        self._kinds.update(new_kinds)
        window.commit()
        if self.remember_deliveries:
            self.deliveries.committed(messages, unstamped)
        self.book.announce(result.changes)
        self._count(batch, result)
        if result.notification_ids:
            self.on_notifications(result.notification_ids)
        if self.hand_over and result.stored:
            await self.detector.take(result.stored)
        return result

    def _without_redeliveries(
        self, batch: Sequence[InboundMessage], result: BatchResult
    ) -> list[InboundMessage]:
        """The batch without messages the broker sends again that are already stored (or are
        earlier in this batch): acknowledged with it, otherwise ignored."""
        if not any(m.dup for m in batch):
            return list(batch)
        kept: list[InboundMessage] = []
        seen: set[tuple[int, str]] = set()
        for m in batch:
            key = (m.mid, digest(m))
            if m.dup and (key in seen or self.deliveries.is_redelivery(m)):
                result.redeliveries += 1
                continue
            seen.add(key)
            kept.append(m)
        return kept

    def _decode(self, message: InboundMessage, result: BatchResult) -> Decoded | None:
        decoded, refusal = decode(message, self.sources)
        if refusal is not None:
            self._dead(result, message, refusal.code, refusal.reason)
        return decoded

    def _within_rate(self, d: Decoded, window: RateWindow, result: BatchResult) -> bool:
        household = d.match.household_id
        at = rate_time(d.readings, d.message.received_at)
        taken, note = window.admit(household, at, alarm=carries_alarm(d.readings))
        if taken:
            return True
        result.shed += 1
        if note:
            self._dead(result, d.message, "rate_limited", self.rate.reason(household))
        return False

    def _judge_retained(self, d: Decoded, result: BatchResult) -> None:
        verdict = judge_retained(d.readings, d.message.received_at, self.detector.current_value)
        d.readings, d.state = verdict.readings, verdict.state
        if verdict.events:
            self._dead(result, d.message, "retained_event", RETAINED_EVENT_REASON)
        result.retained.update(
            event=len(verdict.events),
            unchanged=verdict.unchanged,
            state=len(verdict.state),
            reading=len(verdict.readings),
        )

    async def _known_households(
        self, conn: AsyncConnection, decoded: list[Decoded], result: BatchResult
    ) -> list[Decoded]:
        unknown = await self.directory.unknown_among(conn, {d.match.household_id for d in decoded})
        for d in decoded:
            if d.match.household_id in unknown:
                self._dead(
                    result,
                    d.message,
                    "unknown_household",
                    f"household {d.match.household_id!r} is not registered",
                )
        return [d for d in decoded if d.match.household_id not in unknown]

    async def _resolve_devices(
        self,
        conn: AsyncConnection,
        decoded: list[Decoded],
        new_kinds: dict[DeviceKey, DeviceKind | None],
        result: BatchResult,
    ) -> tuple[list[Reading], set[ReadingKey]]:
        """Register devices seen for the first time; fill in each reading's kind. Returns the
        readings and the keys of those that are retained states.

        The batch's devices are looked up together, and the new ones registered together: a
        query per device made a burst of first-heard devices (an installation day, a restart)
        crawl."""
        keys = {(d.match.household_id, d.match.device_id) for d in decoded}
        await self._load_kinds(conn, keys)
        # Per household with a device new to it, the devices awaiting review (quota).
        unconfirmed = await unconfirmed_devices_by_household(
            conn, {k[0] for k in keys if k not in self._kinds and k not in new_kinds}
        )
        registering: dict[DeviceKey, NewDevice] = {}
        out: list[Reading] = []
        states: set[ReadingKey] = set()
        for d in decoded:
            key = (d.match.household_id, d.match.device_id)
            registered = key in new_kinds or key in self._kinds
            kind = new_kinds[key] if key in new_kinds else self._kinds.get(key)
            everything = d.readings + d.state if d.state else d.readings
            if not registered and self._over_quota_now(key, d.message.received_at, unconfirmed):
                reason = device_limit_reason(*key, self.device_quota)
                self._dead(result, d.message, "device_limit", reason)
                out.extend(r for r in d.readings if is_alarm(r))  # a fire is a fire
                continue
            reported = next((r.kind for r in everything if r.kind is not None), None)
            if not registered or (kind is None and reported is not None):
                # New devices are marked for review; a known kind is never overwritten.
                if not registered:
                    unconfirmed[key[0]] += 1
                kind = kind or reported
                registering[key] = (*key, kind, d.match.source)
                new_kinds[key] = kind
                self.detector.device_registered(*key, kind=kind, source=d.match.source)
            for r in everything:
                out.append(r if r.kind is not None or kind is None else _with_kind(r, kind))
            states.update(reading_key(r) for r in d.state)
        await register_devices(conn, list(registering.values()))
        return out, states

    async def _load_kinds(self, conn: AsyncConnection, keys: set[DeviceKey]) -> None:
        """Cache the kinds of those of `keys` that are registered but not cached yet."""
        uncached = [key for key in keys if key not in self._kinds]
        if uncached:
            self._kinds.update(await device_kinds(conn, uncached))

    def _over_quota_now(self, key: DeviceKey, at: datetime, unconfirmed: dict[str, int]) -> bool:
        """Whether registering this new device would pass its household's quota. `unconfirmed`
        holds the household's count so far, the devices this batch registers included."""
        if self._over_quota.holds(key, at):
            return True
        if unconfirmed[key[0]] < self.device_quota:
            return False
        self._over_quota.add(key, at)
        return True

    async def _store_and_evaluate(
        self,
        conn: AsyncConnection,
        readings: list[Reading],
        states: set[ReadingKey],
        result: BatchResult,
        stage: Stage,
    ) -> None:
        by_key = {reading_key(r): r for r in readings}
        received_at = self.clock.now()
        new_keys = await insert_readings(conn, list(by_key.values()), received_at, states)
        # Each new reading, and whether it is a retained state (keys computed once: hot path).
        fresh = [(r, key in states) for key, r in by_key.items() if key in new_keys]
        result.readings = len(fresh)
        result.duplicates = len(readings) - len(fresh)
        judged = await self.detector.judge_messages(conn, fresh)  # before the state moves on
        await update_device_state(conn, [r for r, _ in fresh], received_at)
        seen: dict[DeviceKey, datetime] = {}
        for r, retained in fresh:
            if retained:
                continue  # the broker's copy: no sign that the device is alive now
            key = (r.household_id, r.device_id)
            seen[key] = max(seen.get(key, r.ts), r.ts)
        await touch_devices(conn, seen)
        if isinstance(self.clock, EventClock) and self.hand_over:
            # (Sharing, the detector's clock follows the readings it reads back instead.)
            for r, retained in fresh:
                if not retained:
                    self.clock.observe(r.ts)
        judge = judged.judge
        if judge is not None:
            stage.follow(judged.follow)
            for r, retained in fresh:
                findings = judge(r, retained)
                if findings:
                    if self.detector.follow_time is not None:
                        self.detector.follow_time(r.ts)
                    applied = await self.book.apply(conn, findings)
                    stage.apply(applied.changes)  # a cancel later in the batch sees its call
                    result.notification_ids += applied.notification_ids
                    result.changes += applied.changes
        result.stored = fresh

    def _dead(self, result: BatchResult, message: InboundMessage, code: str, reason: str) -> None:
        log.info("dead letter (%s) on %s: %s", code, message.topic, reason)
        result.dead_letters.append(
            DeadLetter(message.topic, message.payload, code, reason, message.received_at)
        )

    def _count(self, batch: Sequence[InboundMessage], result: BatchResult) -> None:
        self.metrics.messages.inc(len(batch))
        self.metrics.readings.labels("mqtt").inc(result.readings)
        self.metrics.duplicates.inc(result.duplicates)
        self.metrics.redeliveries.inc(result.redeliveries)
        self.metrics.shed.inc(result.shed)
        for outcome, count in result.retained.items():
            self.metrics.retained_readings.labels(outcome).inc(count)
        for letter in result.dead_letters:
            self.metrics.dead_letters.labels(letter.reason_code).inc()
        if batch:
            oldest = min(m.received_at for m in batch)
            self.metrics.ingest_lag.set((self.clock.now() - oldest).total_seconds())


def _with_kind(reading: Reading, kind: DeviceKind) -> Reading:
    return Reading(
        reading.household_id,
        reading.device_id,
        kind,
        reading.metric,
        reading.value,
        reading.unit,
        reading.ts,
    )
