"""Composition root: builds the parts, wires them and runs their loops. No business logic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.exc import SQLAlchemyError

from gateway.alerts.book import AlertBook, AlertChange
from gateway.alerts.dispatcher import NotificationDispatcher
from gateway.alerts.notifiers.base import Channel, Notifier
from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.api.app import ApiOptions, create_api
from gateway.api.context import ApiContext, BrokerStatus
from gateway.care.directory import HouseholdDirectory
from gateway.care.households import get_household, household_zones
from gateway.clock import Clock, EventClock, SystemClock
from gateway.config import Settings
from gateway.ingest.mqtt import MqttIngest
from gateway.ingest.sources import SourceTable
from gateway.observability import GatewayMetrics
from gateway.pipeline import Pipeline
from gateway.rules.activity import ActivityLog, AwayPeriod
from gateway.rules.catalogue import (
    QuietHoursConfig,
    RulesConfig,
    build_rules,
    load_rules_config,
)
from gateway.rules.engine import LEARNING_SPAN, RuleEngine
from gateway.rules.routine import RoutineSummary, summarize
from gateway.rules.settings import RulesOverrideError, effective_rules
from gateway.store.alerts import active_alerts
from gateway.store.database import create_engine, upgrade
from gateway.store.readings import DeviceRecord, all_device_states, list_devices
from gateway.store.rule_settings import (
    AwayRecord,
    all_away,
    all_overrides,
    get_overrides,
    list_away,
    load_rule_state,
    save_rule_state,
)

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 30
SAVE_INTERVAL_S = 300
"""How often the rules' activity logs are saved (and at an orderly stop): after a crash, up to
this much activity is forgotten, so an inactivity alert may open this much early."""
EVENT_TICK = timedelta(minutes=1)
EVENT_TICKS_PER_BATCH = 24 * 60
SHUTDOWN_GRACE_S = 15.0


def default_notifier(settings: Settings) -> Notifier:
    """Twilio when its settings are complete, else the console."""
    if settings.twilio.enabled:
        from gateway.alerts.notifiers.twilio import TwilioNotifier

        return TwilioNotifier(settings.twilio)
    return ConsoleNotifier()


class StartupError(Exception):
    """The gateway cannot start; the message says why in one line."""


def listen(host: str, port: int) -> socket.socket:
    """Bind the API's socket up front, so a taken port is a clear error, not a crash later."""
    try:
        family, _, _, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        # proto must say TCP: asyncio sets TCP_NODELAY only on accepted sockets whose proto is
        # IPPROTO_TCP, and they inherit it from this one (socket.create_server leaves it 0).
        # Without it every response on a kept-alive connection waits ~40 ms for delayed ACKs.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except OSError as exc:
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen()
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class Gateway:
    """Every part of one gateway process, wired; `run()` serves until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.db = create_engine(settings.database.url, echo=settings.database.echo)
        self.sources = SourceTable(settings.sources)
        self.rules_config = load_rules_config(settings.rules_file)
        self.tz = ZoneInfo(settings.timezone)
        self.rules = RuleEngine(
            build_rules(self.rules_config), activity=self.rules_config.activity, tz=self.tz
        )
        self._quiet_hours: dict[str, QuietHoursConfig] = {}
        self.directory = HouseholdDirectory(self.clock)
        self.book = AlertBook(
            self.clock,
            settings.alerts.language,
            ZoneInfo(settings.timezone),
            quiet_hours=self.quiet_hours,
        )
        self.book.listeners.append(self._tell_rules)
        chosen = notifier or default_notifier(settings)
        self.dispatcher = NotificationDispatcher(
            self.db,
            {Channel.SMS: chosen, Channel.VOICE: chosen},
            self.clock,
            self.metrics,
            attempts=settings.alerts.send_attempts,
            backoff_s=settings.alerts.retry_backoff_s,
        )
        self.pipeline = Pipeline(
            self.db,
            self.sources,
            self.rules,
            self.book,
            self.directory,
            self.metrics,
            self.clock,
            self.dispatcher.submit,
        )
        self.ingest = MqttIngest(
            settings.mqtt,
            self.sources.subscriptions(settings.mqtt.shared_group),
            self.clock,
        )
        self.http: uvicorn.Server | None = None
        self.http_port: int | None = None
        self._ticking = asyncio.Lock()
        self._event_tick: datetime | None = None

    async def prepare(self) -> None:
        """Migrate the schema and restore what the rules need from the store."""
        try:
            await upgrade(self.db)
        except (SQLAlchemyError, OSError) as exc:
            where = self.db.url.render_as_string(hide_password=True)
            raise StartupError(f"cannot use the database {where}: {exc}") from None
        async with self.db.connect() as conn:
            await self.directory.load(conn)
            for device in await list_devices(conn):
                self.rules.note_device(
                    device.household_id,
                    device.device_id,
                    kind=device.kind,
                    source=device.source,
                    registered_at=device.registered_at,
                    last_seen=device.last_seen,
                )
            for household_id, state in await all_device_states(conn):
                if state.value is not None:
                    self.rules.note_device(
                        household_id,
                        state.device_id,
                        values={state.metric: (state.value, state.ts)},
                    )
            for alert in await active_alerts(conn):
                self.rules.alert_opened(
                    alert.household_id, alert.rule_id, alert.device_id, alert.opened_at
                )
            overrides = await all_overrides(conn)
            away = await all_away(conn, ending_after=self.clock.now() - LEARNING_SPAN)
            for household_id, tz_name in await household_zones(conn):
                self._configure(household_id, overrides.get(household_id), tz_name)
                self.rules.set_away(household_id, _periods(away.get(household_id, [])))
            for household_id, saved in (await load_rule_state(conn)).items():
                self.rules.restore_log(household_id, ActivityLog.from_json(saved))

    async def household_changed(self, household_id: str) -> None:
        """Reload a household's zone, rule overrides and away periods (after an API change)."""
        async with self.db.connect() as conn:
            household = await get_household(conn, household_id)
            if household is None:
                return
            saved = await get_overrides(conn, household_id)
            away = await list_away(
                conn, household_id, ending_after=self.clock.now() - LEARNING_SPAN
            )
        self._configure(household_id, saved.overrides if saved else None, household.timezone)
        self.rules.set_away(household_id, _periods(away))

    def routine_summary(self, household_id: str) -> RoutineSummary:
        """What the rules know of a household's activity and learned routine, now."""
        state = self.rules.state(household_id)
        return summarize(state, self.rules.rules_for(household_id), self.clock.now())

    def quiet_hours(self, household_id: str) -> tuple[QuietHoursConfig, ZoneInfo]:
        """The household's quiet hours for low-severity notifications, and its zone."""
        config = self._quiet_hours.get(household_id, self.rules_config.quiet_hours)
        return config, self.rules.state(household_id).tz

    async def save_rule_state(self) -> int:
        """Write the activity logs that changed since the last save (every 5 min, and at stop)."""
        changed = self.rules.take_changed()
        if not changed:
            return 0
        try:
            async with self.db.begin() as conn:
                saved = await save_rule_state(
                    conn, [(h, log.to_json()) for h, log in changed], self.clock.now()
                )
            self.metrics.rule_state_saved.inc(saved)
            return saved
        except SQLAlchemyError:
            # Not lost: kept in memory and written with the next save.
            self.rules.changed.update(h for h, _ in changed)
            log.warning("could not save rule state; will retry", exc_info=True)
            return 0

    def _configure(
        self, household_id: str, overrides: dict[str, Any] | None, tz_name: str | None
    ) -> None:
        tz = _zone(tz_name) or self.tz
        config: RulesConfig | None = None
        if overrides:
            try:
                config = effective_rules(self.rules_config, overrides)
            except RulesOverrideError as exc:
                # Checked when saved; defaults changed since may make old overrides invalid.
                log.error("household %s: rule overrides ignored: %s", household_id, exc)
        if config is None:
            self._quiet_hours.pop(household_id, None)
            self.rules.configure(household_id, tz=tz)
            return
        self._quiet_hours[household_id] = config.quiet_hours
        self.rules.configure(
            household_id, rules=build_rules(config), activity=config.activity, tz=tz
        )

    def api_context(self, admin_token: str) -> ApiContext:
        return ApiContext(
            db=self.db,
            book=self.book,
            directory=self.directory,
            metrics=self.metrics,
            clock=self.clock,
            admin_token=admin_token,
            broker_status=self.broker_status,
            device_installed=self._device_installed,
            household_changed=self.household_changed,
            routine_summary=self.routine_summary,
            rules_defaults=self.rules_config,
        )

    def broker_status(self) -> BrokerStatus:
        return BrokerStatus(self.ingest.connected.is_set(), self.settings.mqtt.display_url())

    async def run(self, stop: asyncio.Event, *, admin_token: str | None) -> None:
        """Ingest, notify, tick and (with a token) serve HTTP until `stop` is set."""
        sock = listen(self.settings.http.host, self.settings.http.port) if admin_token else None
        scheduler = AsyncIOScheduler(timezone="UTC")
        # On event time the rules tick as the traffic's time passes, after each batch.
        if not isinstance(self.clock, EventClock):
            scheduler.add_job(self.tick, "interval", seconds=TICK_INTERVAL_S, max_instances=1)
        scheduler.add_job(
            self.save_rule_state, "interval", seconds=SAVE_INTERVAL_S, max_instances=1
        )
        async with self.ingest, asyncio.TaskGroup() as group:
            consume = group.create_task(self._consume(), name="ingest")
            deliver = group.create_task(self.dispatcher.run(), name="dispatcher")
            http_task: asyncio.Task[None] | None = None
            if sock is not None and admin_token is not None:
                self.http_port = sock.getsockname()[1]
                self.http = _QuietServer(
                    uvicorn.Config(
                        create_api(
                            self.api_context(admin_token),
                            ApiOptions(
                                max_body_bytes=self.settings.http.max_body_bytes,
                                docs=self.settings.docs_exposure(),
                                metrics=self.settings.metrics_exposure(),
                            ),
                        ),
                        host=self.settings.http.host,
                        port=self.settings.http.port,
                        log_level="warning",
                        # uvicorn's loggers then propagate to the CLI's handlers, which mask
                        # personal data, instead of getting unfiltered handlers of their own.
                        log_config=None,
                        lifespan="off",
                    )
                )
                http_task = group.create_task(self.http.serve(sockets=[sock]), name="http")
            scheduler.start()
            try:
                await stop.wait()
            finally:
                scheduler.shutdown(wait=False)
            async with self._ticking:  # a tick in progress finishes first
                pass
            # An orderly stop: no task is cancelled in the middle of a database call.
            if self.http is not None and http_task is not None:
                self.http.should_exit = True
                await http_task
            self.ingest.stop_receiving()  # the batch in hand is stored and acknowledged first
            try:
                await asyncio.wait_for(asyncio.shield(consume), SHUTDOWN_GRACE_S)
            except TimeoutError:
                # The database is not answering: give up the batch, which stays unacknowledged
                # at the broker and comes back on the next start.
                consume.cancel()
            await self.save_rule_state()
            await self.dispatcher.stop()
            deliver.cancel()

    async def close(self) -> None:
        await self.db.dispose()

    async def tick(self, now: datetime | None = None) -> None:
        """Run the time-driven rules (scheduler job; in event time, after each batch)."""
        async with self._ticking:
            with self.metrics.rule_tick.time():
                findings = self.rules.on_tick(now or self.clock.now())
            if findings:
                async with self.db.begin() as conn:
                    applied = await self.book.apply(conn, findings)
                self.dispatcher.submit(applied.notification_ids)

    async def _consume(self) -> None:
        self.metrics.broker_connected.set_function(lambda: float(self.ingest.connected.is_set()))
        async for batch in self.ingest.batches():
            await self.pipeline.process_with_retry(batch)
            self.ingest.ack(batch)
            if isinstance(self.clock, EventClock):
                await self._follow_event_time()

    async def _follow_event_time(self) -> None:
        """Tick at every whole minute of event time the traffic has passed (event clock)."""
        now = self.clock.now()
        if self._event_tick is None:
            self._event_tick = now
            return
        for _ in range(EVENT_TICKS_PER_BATCH):
            if self._event_tick + EVENT_TICK > now:
                return
            self._event_tick += EVENT_TICK
            await self.tick(self._event_tick)
        self._event_tick = now  # a jump of more than a day: catch up in one step
        await self.tick(now)

    def _device_installed(self, device: DeviceRecord) -> None:
        self.pipeline.device_changed(device.household_id, device.device_id, device.kind)
        self.rules.note_device(
            device.household_id,
            device.device_id,
            kind=device.kind,
            source=device.source,
            registered_at=device.registered_at,
        )

    def _tell_rules(self, change: AlertChange) -> None:
        if change.active:
            self.rules.alert_opened(
                change.household_id, change.rule_id, change.device_id, change.opened_at
            )
        else:
            self.rules.alert_closed(change.household_id, change.rule_id, change.device_id)


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


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the CLI owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
