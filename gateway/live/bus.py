"""The bus between gateway processes: events published in one reach the hubs of all.

In one process (SQLite) the bus is the hub itself. With PostgreSQL, several processes share the
database (DESIGN.md §9): each event is handed to this process's hub at once and sent to the
others with NOTIFY; each process LISTENs on a connection of its own, reconnecting with backoff,
and after a reconnection tells every subscriber to resync (notifications sent meanwhile are lost).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import asyncpg
import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.live.events import LiveEvent, Resync
from gateway.live.waits import first_of
from gateway.live.wire import BadPayload, decode, encode
from gateway.store.retry import Backoff, is_transient

log = logging.getLogger(__name__)

CHANNEL = "gateway_live"
OUTBOX_LIMIT = 2000
"""Payloads waiting to be sent; past that they are dropped and the others told to resync."""
PING_INTERVAL_S = 10.0
CONNECT_TIMEOUT_S = 10.0


class Bus(Protocol):
    def publish(self, event: LiveEvent) -> None: ...

    async def run(self, stop: asyncio.Event) -> None: ...


class LocalBus:
    """One process: what is published goes straight to the hub."""

    def __init__(self, deliver: Callable[[LiveEvent], None]) -> None:
        self.deliver = deliver

    def publish(self, event: LiveEvent) -> None:
        self.deliver(event)

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


def asyncpg_dsn(engine: AsyncEngine) -> str:
    """The engine's database as a plain postgresql:// URL for asyncpg."""
    return engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresBus:
    """Several processes on one PostgreSQL database: LISTEN/NOTIFY on `CHANNEL`."""

    def __init__(
        self,
        engine: AsyncEngine,
        deliver: Callable[[LiveEvent], None],
        *,
        heard: Callable[[LiveEvent], None] | None = None,
        channel: str = CHANNEL,
    ) -> None:
        """`deliver` takes every event for this process's hub, its own and the others';
        `heard` is told, after `deliver`, of each event that came from another process."""
        self.engine = engine
        self.deliver = deliver
        self.heard = heard
        self.channel = channel
        self.origin = uuid.uuid4().hex[:12]
        """Payloads this process sent come back to it: it knows them by this."""
        self.listening = asyncio.Event()
        self.listener_pid: int | None = None
        """The server process of the LISTEN connection, while there is one."""
        self._outbox: deque[str] = deque()
        self._owe_resync = False
        self._dropped = 0
        """How many times the outbox was dropped (a send in flight then forgets nothing)."""
        self._wake = asyncio.Event()

    def publish(self, event: LiveEvent) -> None:
        self.deliver(event)
        payloads = list(encode(event, self.origin))
        if len(self._outbox) + len(payloads) > OUTBOX_LIMIT:
            # The database has not taken our notifications for a while: the others will
            # refetch everything once it does.
            self._drop_outbox()
        else:
            self._outbox.extend(payloads)
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen and send until `stop` is set; what is still to send is sent first."""
        async with asyncio.TaskGroup() as group:
            listener = group.create_task(self._listen(stop), name="live-listen")
            await self._send(stop)
            listener.cancel()

    async def _send(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while True:
            if not self._outbox and not self._owe_resync:
                if stop.is_set():
                    return
                await first_of(self._wake.wait(), stop.wait())
                self._wake.clear()
                continue
            try:
                await self._send_waiting()
                backoff = Backoff()
            except (SQLAlchemyError, OSError) as exc:
                if not is_transient(exc):
                    log.exception("live feed: NOTIFY refused; the others will refetch")
                    self._drop_outbox()
                    continue
                if stop.is_set():
                    log.warning(
                        "live feed: %s notifications not sent at shutdown", len(self._outbox)
                    )
                    return
                log.warning("live feed: NOTIFY failed (%s); retry in %.1f s", exc, backoff.delay)
                await first_of(backoff.wait(), stop.wait())

    def _drop_outbox(self) -> None:
        self._outbox.clear()
        self._owe_resync = True
        self._dropped += 1

    async def _send_waiting(self) -> None:
        owed, dropped = self._owe_resync, self._dropped
        waiting = list(self._outbox)
        resync = [next(encode(Resync("notifications lost"), self.origin))] if owed else []
        notify = sa.select(sa.func.pg_notify(self.channel, sa.bindparam("payload")))
        async with self.engine.begin() as conn:
            await conn.execute(notify, [{"payload": p} for p in resync + waiting])
        if dropped != self._dropped:
            return  # dropped meanwhile: a resync is owed, and goes next
        # Only what was sent is forgotten; publish() may have added more meanwhile.
        for _ in waiting:
            self._outbox.popleft()
        self._owe_resync = False

    async def _listen(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        first = True
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(asyncpg_dsn(self.engine), timeout=CONNECT_TIMEOUT_S)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                log.warning("live feed: cannot LISTEN (%s); retrying in %.1f s", exc, backoff.delay)
                await first_of(backoff.wait(), stop.wait())
                continue
            try:
                await conn.add_listener(self.channel, self._heard)
                self.listener_pid = conn.get_server_pid()
                self.listening.set()
                if not first:
                    log.info("live feed: listening again; subscribers refetch")
                    self.deliver(Resync("bus reconnected"))
                first = False
                backoff = Backoff()
                await self._watch(conn, stop)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
                log.warning("live feed: LISTEN connection lost (%s)", exc)
            finally:
                self.listening.clear()
                self.listener_pid = None
                await _close(conn)

    async def _watch(self, conn: asyncpg.Connection, stop: asyncio.Event) -> None:
        """Return when `stop` is set; raise when the connection is lost."""
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        while not stop.is_set():
            await first_of(stop.wait(), lost.wait(), asyncio.sleep(PING_INTERVAL_S))
            if lost.is_set():
                raise OSError("connection terminated")
            if not stop.is_set():
                await asyncio.wait_for(conn.fetchval("SELECT 1"), PING_INTERVAL_S)

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin, event = decode(payload)
        except BadPayload as exc:
            log.warning("live feed: unreadable notification skipped (%s)", exc)
            return
        if origin != self.origin:
            self.deliver(event)
            if self.heard is not None:
                self.heard(event)


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
        conn.terminate()
