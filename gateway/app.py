"""Composition root: builds the parts, wires them and runs their loops. No business logic."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable, Generator, Iterable
from zoneinfo import ZoneInfo

import uvicorn
from sqlalchemy.exc import SQLAlchemyError

from gateway.alerts.book import AlertBook
from gateway.alerts.dispatcher import NotificationDispatcher
from gateway.alerts.escalation import Escalator
from gateway.alerts.links import AckLinks
from gateway.alerts.notifiers.base import Channel, Notifier
from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.alerts.responses import Responses
from gateway.allocator import release_freed_memory
from gateway.api.app import ApiOptions, create_api
from gateway.api.context import ApiContext, BrokerStatus
from gateway.care.directory import HouseholdDirectory
from gateway.care.reminder_plan import ReminderRules
from gateway.care.reminders import VisitReminders
from gateway.care.warning_sms import WarningSmsReplies
from gateway.clock import Clock, EventClock, SystemClock
from gateway.config import IngestSettings, Settings
from gateway.detector import FOLLOW_S, LEASE_RENEW_S, Detector
from gateway.ingest.lanes import AlarmBudget, Lane, Lanes
from gateway.ingest.mqtt import MqttIngest
from gateway.ingest.sources import SourceTable
from gateway.live.feed import LiveFeed
from gateway.observability import GatewayMetrics
from gateway.pipeline import Pipeline
from gateway.readings_feed import READ_LIMIT
from gateway.rules.catalogue import load_rules_config
from gateway.scheduling import Schedule
from gateway.store.database import create_engine, upgrade
from gateway.store.readings import DeviceRecord

log = logging.getLogger(__name__)

TICK_INTERVAL_S = 30
SAVE_INTERVAL_S = 300
"""How often the rules' activity logs are saved (and at an orderly stop): after a crash, up to
this much activity is forgotten, so an inactivity alert may open this much early."""
SHUTDOWN_GRACE_S = 15.0
LIVE_FRAME_MAX_BYTES = 16 * 1024
ALARM_HEADSTART_S = 0.05
"""After a batch of alarms that notified someone, ingest pauses this long for the dispatcher."""


def default_notifier(settings: Settings) -> Notifier:
    """Twilio when its settings are complete, else the console."""
    if settings.twilio.enabled:
        from gateway.alerts.notifiers.twilio import TwilioNotifier

        return TwilioNotifier(settings.twilio, settings.public_url)
    return ConsoleNotifier()


def channel_notifiers(settings: Settings, chosen: Notifier | None) -> dict[Channel, Notifier]:
    """Who carries each channel: `chosen` (tests, the demo) for all, else by the settings.

    Calls go through Twilio when it is configured. SMS through `[escalation] sms_provider`, or
    Twilio, else Alibaba Cloud, whichever is configured. Group robots when there are any.
    Whatever has no provider is printed on the console.
    """
    if chosen is not None:
        return {Channel.SMS: chosen, Channel.VOICE: chosen, Channel.ROBOT: chosen}
    calls = default_notifier(settings)
    provider = settings.escalation.sms_provider
    if provider is None:
        provider = "twilio" if settings.twilio.enabled else "console"
        if provider == "console" and settings.aliyun.enabled:
            provider = "aliyun"
    sms: Notifier = calls
    if provider == "aliyun":
        from gateway.alerts.notifiers.aliyun import AliyunSmsNotifier

        sms = AliyunSmsNotifier(settings.aliyun)
    elif provider == "console":
        sms = ConsoleNotifier()
    robot: Notifier = ConsoleNotifier()
    if settings.escalation.robots:
        from gateway.alerts.notifiers.robots import RobotNotifier

        robot = RobotNotifier(settings.escalation.robots, wall_clock=SystemClock())
    return {Channel.SMS: sms, Channel.VOICE: calls, Channel.ROBOT: robot}


def alarm_lanes(limits: IngestSettings, sources: SourceTable) -> Lanes:
    """Ingest's buffer, with possible alarms ahead within each household's budget."""

    def household_of(topic: str) -> str | None:
        match = sources.match(topic)
        return match.household_id if match is not None else None

    budget = AlarmBudget(limits.alarm_lane_per_s, limits.alarm_lane_burst, household_of)
    return Lanes(limits.buffer_size, budget)


class StartupError(Exception):
    """The gateway cannot start; the message says why in one line."""


def listen(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """Bind the API's socket up front, so a taken port is a clear error, not a crash later.
    `shared`: other worker processes bind the same port (SO_REUSEPORT spreads connections)."""
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
        if shared:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen()
    except OSError as exc:
        sock.close()
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


class Core:
    """The parts that turn messages into alerts, shared by the service and `replay`: the
    database, the household directory, the alert book, the detector and the pipeline."""

    def __init__(
        self,
        settings: Settings,
        clock: Clock,
        metrics: GatewayMetrics,
        on_notifications: Callable[[Iterable[int]], None],
        *,
        shared: bool = False,
    ) -> None:
        """`shared`: other processes may take this household's messages too (PostgreSQL): the
        detector owns partitions by lease and reads stored readings back from the database."""
        tz = ZoneInfo(settings.timezone)
        self.clock = clock
        self.db = create_engine(settings.database.url, echo=settings.database.echo)
        self.sources = SourceTable(settings.sources)
        self.directory = HouseholdDirectory(clock)
        self.escalator = Escalator(
            self.db,
            clock,
            settings.escalation,
            metrics,
            language=settings.alerts.language,
            default_zone=tz,
            public_url=settings.public_url,
            submit=on_notifications,
        )
        self.book = AlertBook(
            self.db, clock, settings.alerts.language, tz, escalator=self.escalator
        )
        self.detector = Detector(
            self.db,
            load_rules_config(settings.rules_file),
            tz,
            self.book,
            clock,
            metrics,
            on_notifications,
        )
        self.book.quiet_hours = self.detector.quiet_hours
        self.pipeline = Pipeline(
            self.db,
            self.sources,
            self.detector,
            self.book,
            self.directory,
            metrics,
            clock,
            on_notifications,
            session=settings.mqtt.client_id,
            limits=settings.ingest,
        )
        if shared:
            self.detector.share_out(owner=settings.mqtt.client_id)
            self.pipeline.hand_over = False

    async def prepare(self) -> None:
        """Migrate the schema and restore what ingest and the rules need from the store."""
        try:
            await upgrade(self.db)
        except (SQLAlchemyError, OSError) as exc:
            where = self.db.url.render_as_string(hide_password=True)
            raise StartupError(f"cannot use the database {where}: {exc}") from None
        async with self.db.connect() as conn:
            await self.directory.load(conn)
            await self.pipeline.load(conn)
        await self.detector.load()
        await self.detector.share()  # the partitions this process starts with, if it shares

    async def household_changed(self, household_id: str) -> None:
        """A household was registered or its settings changed (API, replay): ingest takes its
        messages from now on, and the rules reload its zone, overrides and away periods."""
        self.directory.remember(household_id)
        await self.detector.household_changed(household_id)

    def device_installed(self, device: DeviceRecord) -> None:
        """An installer registered or confirmed a device through the API."""
        self.pipeline.device_changed(device.household_id, device.device_id, device.kind)
        self.detector.device_registered(
            device.household_id,
            device.device_id,
            kind=device.kind,
            source=device.source,
            registered_at=device.registered_at,
        )

    async def close(self) -> None:
        await self.db.dispose()


class Gateway:
    """Every part of one gateway process, wired; `run()` serves until `stop` is set."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        share_port: bool = False,
    ) -> None:
        """`share_port`: one of several worker processes serving the API on the same port."""
        self.settings = settings
        self.share_port = share_port
        self.clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.core = Core(
            settings,
            self.clock,
            self.metrics,
            self._notify,
            shared=settings.database.url.startswith("postgresql"),
        )
        self.db = self.core.db
        self.book = self.core.book
        self.detector = self.core.detector
        self.pipeline = self.core.pipeline
        self.escalator = self.core.escalator
        self.dispatcher = NotificationDispatcher(
            self.db,
            channel_notifiers(settings, notifier),
            self.clock,
            self.metrics,
            attempts=settings.alerts.send_attempts,
            backoff_s=settings.alerts.retry_backoff_s,
            urgent_workers=settings.alerts.urgent_workers,
            batch_window_s=settings.escalation.batch_window_s,
            texts=self.escalator.texts,
            gather=self.escalator.hears_answers,
            on_failed=self.escalator.failed,
        )
        care = settings.care
        self.reminders = VisitReminders(
            self.db,
            self.clock,
            ReminderRules(
                monthly_days=tuple(care.monthly_days),
                send_at=care.send_at,
                quiet_from=care.quiet_from,
                high_risk_every_days=care.high_risk_every_days or None,
                changed_within_hours=care.changed_within_hours or None,
            ),
            ZoneInfo(settings.timezone),
            language=settings.alerts.language,
            submit=self._notify,
        )
        self.responses = Responses(
            self.db,
            self.book,
            self.escalator,
            self.metrics,
            reply_handler=WarningSmsReplies(self.db, self.clock),
        )
        self.ingest = MqttIngest(
            settings.mqtt,
            self.core.sources.subscriptions(settings.mqtt.shared_group),
            self.clock,
            lanes=alarm_lanes(settings.ingest, self.core.sources),
        )
        self.live = LiveFeed(self.db, self.metrics)
        self.live.on_registry = self._registry_heard
        self._reloads: set[asyncio.Task[None]] = set()
        self.http: uvicorn.Server | None = None
        self.http_port: int | None = None
        self._notified = 0
        """Batches of notifications handed to the dispatcher so far."""

    async def prepare(self) -> None:
        await self.core.prepare()

    def api_context(self, admin_token: str) -> ApiContext:
        links = (
            AckLinks(admin_token, self.settings.public_url) if self.settings.public_url else None
        )
        self.escalator.links = links
        return ApiContext(
            db=self.db,
            book=self.book,
            directory=self.core.directory,
            metrics=self.metrics,
            clock=self.clock,
            admin_token=admin_token,
            broker_status=self.broker_status,
            device_installed=self.core.device_installed,
            household_changed=self._household_changed,
            routine_summary=self.detector.routine_summary,
            rules_defaults=self.detector.rules_config,
            zone=ZoneInfo(self.settings.timezone),
            escalation_defaults=dict(self.settings.escalation.policies),
            ack_links=links,
            responses=self.responses,
            twilio_auth_token=(
                self.settings.twilio.auth_token.get_secret_value()
                if self.settings.twilio.enabled and self.settings.twilio.auth_token
                else None
            ),
            public_url=self.settings.public_url,
            send_now=self.dispatcher.submit,
            live=self.live,
        )

    async def _household_changed(self, household_id: str) -> None:
        await self.core.household_changed(household_id)
        self.live.registry_changed(household_id)

    def _registry_heard(self, household_ids: frozenset[str]) -> None:
        """Another process changed these households (their settings, away periods): reload
        them, so the detector owning them here judges with what was set there."""
        for household_id in household_ids:
            task = asyncio.get_running_loop().create_task(self.core.household_changed(household_id))
            self._reloads.add(task)
            task.add_done_callback(self._reloads.discard)

    async def _save_state(self) -> None:
        """The periodic save of the rules' state, then the memory freed since handed back
        (gateway/allocator.py)."""
        await self.detector.save_state()
        release_freed_memory()

    def broker_status(self) -> BrokerStatus:
        return BrokerStatus(self.ingest.connected.is_set(), self.settings.mqtt.display_url())

    async def run(self, stop: asyncio.Event, *, admin_token: str | None) -> None:
        """Ingest, notify, tick and (with a token) serve HTTP until `stop` is set."""
        http = self.settings.http
        sock = listen(http.host, http.port, shared=self.share_port) if admin_token else None
        schedule = Schedule(self.metrics)
        # On event time the rules tick as the traffic's time passes, after each batch.
        if not isinstance(self.clock, EventClock):
            schedule.every(TICK_INTERVAL_S, "rules_tick", self.detector.tick)
        schedule.every(SAVE_INTERVAL_S, "rule_state_save", self._save_state)
        if self.detector.owner is not None:
            schedule.every(LEASE_RENEW_S, "detector_leases", self.detector.share)
        schedule.every(
            self.settings.escalation.check_interval_s, "escalation", self.escalator.run_due
        )
        self.escalator.wake = lambda: schedule.run_soon("escalation")
        if self.settings.care.reminders:
            # Hourly: monthly and high-risk reminders go out at the first run from send_at,
            # a change in an elder's situation within the hour.
            schedule.cron(
                "visit_reminders",
                self.reminders.run_due,
                zone=ZoneInfo(self.settings.timezone),
                minute=self.settings.care.send_at.minute,
            )
        async with self.ingest, asyncio.TaskGroup() as group:
            consume = group.create_task(self._consume(), name="ingest")
            deliver = group.create_task(self.dispatcher.run(), name="dispatcher")
            live = group.create_task(self.live.run(), name="live")
            following = asyncio.Event()
            if self.detector.owner is not None:
                group.create_task(self._follow(following), name="detector-follow")
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
                        # The live feed's only inbound frame is the token: anyone may open a
                        # WebSocket, so nobody may make the gateway buffer megabytes first.
                        ws_max_size=LIVE_FRAME_MAX_BYTES,
                    )
                )
                http_task = group.create_task(self.http.serve(sockets=[sock]), name="http")
            schedule.start()
            try:
                await stop.wait()
            finally:
                schedule.stop()
            self.detector.stop()
            await self.detector.idle()  # a tick in progress finishes first
            # An orderly stop: no task is cancelled in the middle of a database call.
            self.live.close_subscribers()  # WebSockets close with 1012; pages reconnect
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
            following.set()
            if self.detector.owner is not None:
                await self.detector.resign()  # the others take its partitions over at once
            else:
                await self.detector.save_state()
            await self.dispatcher.stop()
            deliver.cancel()
            self.live.stop()  # after the last batch: its changes still reach other processes
            await live
            # Reloads asked for by other processes' changes finish before the database closes.
            await asyncio.gather(*self._reloads, return_exceptions=True)

    async def close(self) -> None:
        # Reloads still running finish first (also when `run` never ran, as in the API tests):
        # one cancelled later, with the loop, would leave its connection to a disposed pool,
        # for the garbage collector to find after the loop has closed.
        await asyncio.gather(*self._reloads, return_exceptions=True)
        await self.core.close()

    async def _consume(self) -> None:
        self.metrics.broker_connected.set_function(lambda: float(self.ingest.connected.is_set()))
        self.metrics.watch_buffer(self.ingest.lanes, self.clock)
        async for lane, batch in self.ingest.lane_batches():
            notified = self._notified
            await self.pipeline.process_with_retry(batch)
            self.ingest.ack(batch)
            self.metrics.count_batch(lane, self.ingest.lanes)
            if lane is Lane.ALARM and self._notified != notified:
                # The alarm's first messages are claimed and sent before ordinary readings
                # take the database again (SQLite has one writer).
                await asyncio.sleep(ALARM_HEADSTART_S)
            if isinstance(self.clock, EventClock) and self.pipeline.hand_over:
                await self.detector.tick_through(self.clock.now())

    async def _follow(self, stop: asyncio.Event) -> None:
        """The detector reads the readings every process stores, as they are stored (and on
        event time ticks as their time passes)."""
        while not stop.is_set():
            try:
                read = await self.detector.follow()
                if read and isinstance(self.clock, EventClock):
                    # (Not before the first reading: until then the clock reads the system's.)
                    await self.detector.tick_through(self.clock.now())
            except (SQLAlchemyError, OSError):
                log.warning("reading stored readings failed; retrying", exc_info=True)
                read = 0
            if read < READ_LIMIT:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FOLLOW_S)

    def _notify(self, notification_ids: Iterable[int]) -> None:
        self._notified += 1
        self.dispatcher.submit(notification_ids)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the CLI owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield
