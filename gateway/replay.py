"""Replay a recording through the whole pipeline on event time, printing the alerts it opens.

How an installer checks what a threshold would have done last month: normalise, rules and alerts
run exactly as in the service (the same `Core`: pipeline, detector, alert book), but against a
throw-away SQLite database (or `--database`) and a manual clock, with no dispatcher at all, so
nothing is ever sent (notifications stay `pending`).

Time follows the recording: each message is received at its `ts`, and the time-driven rules
tick at every whole minute of event time the stream passes, between the readings before it and
those after (the detector does, as it takes a batch's readings), so a device falling silent
opens its alert at the minute it would have. The clock is set to the time of each tick and of
each reading whose alerts are stored.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.book import AlertChange
from gateway.alerts.policy import Policy
from gateway.app import Core
from gateway.care.households import HouseholdIn, create_household, household_exists
from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.ingest.mqtt import InboundMessage
from gateway.observability import GatewayMetrics
from gateway.store.alerts import AlertRecord, list_alerts
from gateway.store.paging import Window
from gateway.store.rule_settings import add_away
from gateway.store.tables import escalations
from simulators import Incident, Message
from simulators.recording import read_labels, read_recording

BATCH_SIZE = 2000
TICK_S = 60
MAX_AWAY = timedelta(days=90)
CHARTS_INDEX = "ix_readings_household_ts"
"""The readings' index only the API's charts use (gateway/store/series.py)."""


class RecordingError(Exception):
    """The recording cannot be read; the message says where, in one line."""


@dataclass(slots=True)
class ReplayReport:
    """What a replay did, for the summary line."""

    messages: int = 0
    readings: int = 0
    households_registered: int = 0
    notifications_pending: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    alerts: Counter[str] = field(default_factory=Counter)
    away_periods: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    wall_s: float = 0.0

    def summary(self) -> str:
        rate = self.messages / self.wall_s if self.wall_s > 0 else 0.0
        span_h = (self.last_ts - self.first_ts) / 3600 if self.first_ts and self.last_ts else 0.0
        return json.dumps(
            {
                "messages": self.messages,
                "event_span_h": round(span_h, 1),
                "readings": self.readings,
                "households_registered": self.households_registered,
                "away_periods": self.away_periods,
                "dead_letters": dict(sorted(self.dead_letters.items())),
                "alerts": dict(sorted(self.alerts.items())),
                "notifications_not_sent": self.notifications_pending,
                "wall_s": round(self.wall_s, 2),
                "msgs_per_s": round(rate),
            },
            ensure_ascii=False,
        )


def alert_line(alert: AlertRecord, first_contact: str | None = None) -> str:
    """One opened alert as a JSON line (times in ISO 8601 UTC, event time), with who its
    escalation policy contacts first ("elder" for a check-in call, "visitor", "relative",
    "control_room"; null: no policy)."""
    return json.dumps(
        {
            "rule": alert.rule_id,
            "household_id": alert.household_id,
            "device_id": alert.device_id,
            "severity": alert.severity.value,
            "opened_at": alert.opened_at.isoformat(),
            "summary": alert.summary,
            "evidence": alert.evidence,
            "first_contact": first_contact,
        },
        ensure_ascii=False,
    )


def replay_file(
    settings: Settings,
    path: Path,
    *,
    temporary: bool,
    out: TextIO,
    labels: Path | None = None,
    workers: int = 1,
) -> ReplayReport:
    """Replay `path` (into a throw-away database when `temporary`, else settings' database).

    Alert lines go to `out`; the away periods of a `labels` file are marked first. With
    `workers` > 1 and a throw-away database, the households are replayed in that many
    processes (gateway/replay_parallel.py). Raises RecordingError when a file is missing or
    malformed.
    """
    if not path.is_file():
        raise RecordingError(f"{path}: no such recording")
    cases = _labels(labels) if labels is not None else []
    if not temporary:
        return asyncio.run(_replay(settings, path, out, cases))
    if workers > 1:
        from gateway.replay_parallel import can_fork, replay_in_parts

        if can_fork():
            return replay_in_parts(settings, path, out, cases, workers)
    with tempfile.TemporaryDirectory(prefix="gateway-replay-") as folder:
        return asyncio.run(
            _replay(throwaway_settings(settings, Path(folder)), path, out, cases, disposable=True)
        )


def throwaway_settings(settings: Settings, folder: Path) -> Settings:
    """`settings` with a new SQLite database in `folder`."""
    url = f"sqlite+aiosqlite:///{folder / 'replay.db'}"
    database = settings.database.model_copy(update={"url": url})
    return settings.model_copy(update={"database": database})


async def _replay(
    settings: Settings,
    path: Path,
    out: TextIO,
    labels: list[Incident],
    *,
    disposable: bool = False,
) -> ReplayReport:
    messages = checked(read_recording(path))
    first = next(messages, None)
    start = datetime.fromtimestamp(first.ts if first else 0.0, UTC)
    async with Replay(settings, ManualClock(start), out, disposable=disposable) as replay:
        marked = await mark_away(replay.core, labels)
        report = await replay.run(_chain(first, messages))
        report.away_periods = marked
        return report


async def mark_away(core: Core, labels: Iterable[Incident]) -> int:
    """Mark the `away` labels as away periods, as an operator would through the API; registers
    their households if needed. Returns how many were marked."""
    away = [i for i in labels if i.type == "away"]
    if not away:
        return 0
    now = core.clock.now()
    marked: set[str] = set()
    async with core.db.begin() as conn:
        for label in away:
            if await register_placeholder(conn, label.household_id, now) is None:
                continue  # not a valid household id
            marked.add(label.household_id)
            begins = datetime.fromtimestamp(label.start, UTC)
            ends = (
                datetime.fromtimestamp(label.end, UTC)
                if label.end is not None
                else begins + MAX_AWAY  # still away when the recording ended
            )
            await add_away(
                conn, label.household_id, begins, ends, note="labels", by="replay", now=now
            )
    for household_id in sorted(marked):
        await core.household_changed(household_id)
    return sum(1 for label in away if label.household_id in marked)


async def register_placeholder(
    conn: AsyncConnection, household_id: str, now: datetime
) -> bool | None:
    """Register a household seen in traffic or labels, with its id as the elder's name and no
    contacts. True if registered now, False if it existed, None if the id is not valid."""
    try:
        body = HouseholdIn.model_validate({"id": household_id, "elder": {"name": household_id}})
    except ValidationError:
        return None
    if await household_exists(conn, household_id):
        return False
    await create_household(conn, body, now)
    return True


def _labels(path: Path) -> list[Incident]:
    if not path.is_file():
        raise RecordingError(f"{path}: no such labels file")
    try:
        return read_labels(path)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise RecordingError(f"{path}: not a labels file ({exc})") from None


class Replay:
    """Feeds recorded messages, in event-time order, through a `Core` of its own whose clock
    follows the recording; nothing is ever sent. Use as an async context manager."""

    def __init__(
        self, settings: Settings, clock: ManualClock, out: TextIO, *, disposable: bool = False
    ) -> None:
        """`disposable`: the database is a throw-away SQLite file, deleted after the replay."""
        self.clock = clock
        self.disposable = disposable
        self.out = out
        self.report = ReplayReport()
        self.core = Core(settings, clock, GatewayMetrics(), self._not_sent)
        self.core.detector.event_ticks = True
        self.core.pipeline.remember_deliveries = False  # no broker to send anything again
        self.core.detector.follow_time = clock.set
        self.core.book.listeners.append(self._on_change)
        self._known: set[str] = set()
        self._opened = 0
        self._last_alert_id = 0
        if disposable:
            event.listen(self.core.db.sync_engine, "connect", _unsynced)

    async def __aenter__(self) -> Replay:
        await self.core.prepare()
        if self.disposable:
            # Only the API's charts read readings by household and time: in a database no one
            # will look at, the index is pure cost on every insert.
            async with self.core.db.begin() as conn:
                await conn.exec_driver_sql(f"DROP INDEX IF EXISTS {CHARTS_INDEX}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.core.close()

    async def run(
        self, messages: Iterable[Message], keep: Callable[[Message], bool] | None = None
    ) -> ReplayReport:
        """Replay `messages`; with `keep`, only those it keeps (a part of the households:
        gateway/replay_parallel.py), in the batches and on the clock of the whole recording."""
        began = time.perf_counter()
        self._last_alert_id = await self._newest_alert_id()
        batch: list[InboundMessage] = []
        counted = 0  # messages of the recording in this batch, kept or not
        latest: float | None = None  # the time of the last of them
        for m in messages:
            if latest is None:
                self._tick_from(m.ts)
            if counted >= BATCH_SIZE and latest is not None:
                await self._process(batch, latest)
                batch, counted = [], 0
            counted += 1
            latest = m.ts
            if keep is not None and not keep(m):
                continue
            if self.report.first_ts is None:
                self.report.first_ts = m.ts
            batch.append(_inbound(m, self.report.messages))
            self.report.messages += 1
            self.report.last_ts = m.ts
        if latest is not None:
            await self._process(batch, latest)
        self.report.wall_s = time.perf_counter() - began
        return self.report

    @property
    def ticked_through(self) -> datetime | None:
        """The event time the rules over time have been ticked up to."""
        return self.core.detector.ticked_through

    def tick_every_minute(self) -> None:
        """Tick every minute however long the readings pause (a part of a recording, whose
        other households go on passing the minutes), not once after a day's silence."""
        self.core.detector.event_ticks_at_once = sys.maxsize

    async def tick_through(self, at: datetime) -> None:
        """Tick the rules on to `at` (the minutes the recording's other parts passed) and
        print the alerts that opens."""
        await self.core.detector.tick_through(at)
        await self._print_opened()

    def _tick_from(self, ts: float) -> None:
        # The rules tick at every whole minute of the recording's time, between the readings
        # before it and those after (Detector.take), as the service would.
        self.core.detector.tick_from(datetime.fromtimestamp(ts // TICK_S * TICK_S, UTC))

    async def _process(self, batch: list[InboundMessage], latest: float) -> None:
        """Process a batch; `latest` is the time of the recording's last message in it (the
        last of the batch, or in a part, perhaps another household's)."""
        if not batch:
            return
        now = datetime.fromtimestamp(latest, UTC)
        self.clock.set(now)
        await self._register_households(batch)
        try:
            result = await self.core.pipeline.process(batch)
        except SQLAlchemyError:
            # Rare: let the service's own path split the batch and keep what the store refuses.
            await self.core.pipeline.process_with_retry(batch)
        else:
            self.report.readings += result.readings
            self.report.dead_letters.update(d.reason_code for d in result.dead_letters)
        self.clock.set(now)
        await self._print_opened()

    async def _register_households(self, batch: list[InboundMessage]) -> None:
        """Register each household the first time its topic appears (elder name = its id)."""
        new: set[str] = set()
        for m in batch:
            match = self.core.sources.match(m.topic)
            if match is not None and match.household_id not in self._known:
                new.add(match.household_id)
        if not new:
            return
        self._known |= new
        async with self.core.db.begin() as conn:
            for household_id in sorted(new):
                registered = await register_placeholder(conn, household_id, self.clock.now())
                if registered is None:
                    continue  # not a valid id: the pipeline dead-letters its messages
                self.report.households_registered += registered
                self.core.directory.remember(household_id)

    async def _print_opened(self) -> None:
        if not self._opened:
            return
        async with self.core.db.connect() as conn:
            fresh = (await list_alerts(conn, window=Window(limit=self._opened))).items
            found = await conn.execute(
                sa.select(escalations.c.alert_id, escalations.c.policy).where(
                    escalations.c.alert_id.in_([a.id for a in fresh])
                )
            )
            policies = {row.alert_id: row.policy for row in found}
        self._opened = 0
        opened = sorted(
            (a for a in fresh if a.id > self._last_alert_id), key=lambda a: (a.opened_at, a.id)
        )
        for alert in opened:
            policy = policies.get(alert.id)
            first = Policy.from_json(policy).first_contact() if policy else None
            print(alert_line(alert, first), file=self.out, flush=True)
            self.report.alerts[alert.rule_id] += 1
            self._last_alert_id = max(self._last_alert_id, alert.id)

    async def _newest_alert_id(self) -> int:
        async with self.core.db.connect() as conn:
            newest = (await list_alerts(conn, window=Window(limit=1))).items
        return newest[0].id if newest else 0

    def _on_change(self, change: AlertChange) -> None:
        if change.active:
            self._opened += 1

    def _not_sent(self, notification_ids: Iterable[int]) -> None:
        self.report.notifications_pending += len(list(notification_ids))


def _unsynced(dbapi_connection: Any, _record: Any) -> None:
    """A throw-away database is never waited for on disk (it is deleted after the replay)."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


def _inbound(m: Message, mid: int) -> InboundMessage:
    return InboundMessage(
        topic=m.topic,
        payload=m.payload.encode("utf-8", "backslashreplace"),
        qos=1,
        mid=mid,
        retain=m.retain,
        received_at=datetime.fromtimestamp(m.ts, UTC),
    )


def checked(messages: Iterator[Message]) -> Iterator[Message]:
    """The messages; a line that is not a recorded message becomes one RecordingError."""
    try:
        yield from messages
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordingError(str(exc)) from None


def _chain(first: Message | None, rest: Iterator[Message]) -> Iterator[Message]:
    if first is not None:
        yield first
    yield from rest
