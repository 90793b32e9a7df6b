"""The broker connection: QoS 1 on a persistent session, messages acknowledged only once stored.

paho-mqtt speaks MQTT; the asyncio event loop drives its socket (no thread of its own, which
would contend with the pipeline for the GIL): the loop calls paho to read when the socket is
readable, many packets at a time, to write when paho has packets queued, and once a second for
keepalive. Connecting (TCP, TLS) happens in a worker thread so that the API and the rules'
tick, on the same loop, never wait for it; the socket is then handed to the loop. When the
connection is lost, or the broker is not there at start, it retries with backoff between
`reconnect_min_s` and `reconnect_max_s`.

Messages go to the pipeline through two lanes (gateway/ingest/lanes.py): possible alarms go
ahead of ordinary readings, which wait in a bounded buffer. When that buffer is full the loop
stops reading the socket until the pipeline takes a batch: TCP pushes back, the broker holds
the rest, and nothing is dropped. The broker's window of unacknowledged messages (mosquitto's
`max_inflight_messages`) no larger than the buffer keeps the socket read, so an alarm is seen
as soon as the broker sends it. Messages are acknowledged (PUBACK) only after the caller has
committed them, so a crash at any point loses nothing: the broker redelivers what was not
acknowledged, and the store ignores what it already has. An alarm's batch is acknowledged
before older ordinary messages: acknowledgements name their packet id, and Mosquitto and EMQX
take them in any order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import threading
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from gateway.clock import Clock
from gateway.config import MqttSettings
from gateway.ingest.lanes import Lane, Lanes

log = logging.getLogger(__name__)

ORDINARY_BATCH_S = 0.05
"""About how long storing one batch of ordinary messages may take (an alarm may wait that)."""
MIN_BATCH = 50
"""The smallest ordinary batch, whatever the time: fewer would cost more in commits."""
READ_PACKETS = 1000
"""Packets read per wake-up at most: the rest of the loop (API, rules) gets a turn between."""
MISC_INTERVAL_S = 1.0
"""How often paho checks the keepalive (sends PINGREQ, gives up on a silent broker)."""
CLOSE_S = 10.0
"""How long leaving waits for the DISCONNECT to go out (or a connection attempt to end)."""


@dataclass(frozen=True, slots=True)
class InboundMessage:
    topic: str
    payload: bytes
    qos: int
    mid: int
    retain: bool
    received_at: datetime
    dup: bool = False
    """The broker is sending it again (its acknowledgement was lost): maybe already stored."""


class _Client(paho.Client):
    def _handle_on_message(self, message: paho.MQTTMessage) -> None:
        """Every message to `on_message`. paho first looks each topic up among the callbacks of
        `message_callback_add`, which the gateway does not use (4 % of a drain's time)."""
        on_message = self.on_message
        if on_message is not None:
            on_message(self, self._userdata, message)

    def read_packet(self) -> MQTTErrorCode:
        """Read one packet: SUCCESS, MQTT_ERR_AGAIN when no whole packet is waiting, or an
        error once the connection is lost (and closed).

        `loop_read` does this for each packet, but paho 2.1 and 2.2 read only as many as
        there are messages in flight (one, for a subscriber) whatever `max_packets` says,
        and do not tell a packet read from a dry socket."""
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        rc = self._packet_read()
        if rc > 0:
            self._loop_rc_handle(rc)
        return rc


class MqttIngest:
    """Async context manager; iterate `batches()` and call `ack()` after storing each batch."""

    def __init__(
        self,
        settings: MqttSettings,
        subscriptions: Sequence[str],
        clock: Clock,
        *,
        lanes: Lanes | None = None,
    ) -> None:
        """`lanes`: the buffer and the alarm lane's budget; by default 10,000 ordinary
        messages and no alarm lane."""
        self.settings = settings
        self.subscriptions = list(subscriptions)
        self.clock = clock
        self.connected = asyncio.Event()
        self.subscribed = asyncio.Event()
        """Set once the broker has confirmed the subscriptions of the current connection."""
        self.lanes = lanes or Lanes(10_000, None)
        self._stopping = False
        self._arrived = asyncio.Event()
        """Set when a message is queued (or `batches()` should end): the consumer's wake-up."""
        self._leaving = asyncio.Event()
        self._paused = False
        """The ordinary lane is full: the socket is not read until the pipeline takes from it."""
        self._sock: Any = None
        """The socket the event loop watches, while connected."""
        self._closed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._connection: asyncio.Task[None] | None = None
        self._accepted = False
        """The broker accepted the current connection (CONNACK): the backoff starts over."""
        self._client = self._build_client()

    def _build_client(self) -> _Client:
        s = self.settings
        client = _Client(
            CallbackAPIVersion.VERSION2,
            client_id=s.client_id,
            clean_session=False,
            protocol=paho.MQTTv311,
            manual_ack=True,
        )
        ep = s.endpoint()
        if ep.username:
            client.username_pw_set(ep.username, ep.password)
        if ep.tls:
            client.tls_set(
                ca_certs=str(s.ca_file) if s.ca_file else None, tls_version=ssl.PROTOCOL_TLS_CLIENT
            )
        client.max_inflight_messages_set(s.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_socket_register_write
        client.on_socket_unregister_write = self._on_socket_unregister_write
        return client

    async def __aenter__(self) -> MqttIngest:
        ep = self.settings.endpoint()
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._client.connect_async(ep.host, ep.port, keepalive=self.settings.keepalive_s)
        self._connection = asyncio.create_task(self._keep_connected(), name="mqtt-connection")
        self._connection.add_done_callback(_log_failure)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Unacknowledged messages stay at the broker and come back on the next start.
        self.stop_receiving()
        self._leaving.set()
        if self._sock is not None:
            self._client.disconnect()
        if self._connection is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._connection), CLOSE_S)
        except TimeoutError:
            log.warning("the broker did not take the DISCONNECT in %.0f s; closing", CLOSE_S)
            self._connection.cancel()
            sock = self._sock
            if sock is not None:
                self._unwatch(sock)
                sock.close()

    def stop_receiving(self) -> None:
        """End `batches()` after the batch in hand; what is not acknowledged stays queued."""
        self._stopping = True
        self._arrived.set()

    async def wait_connected(self, within_s: float) -> bool:
        return await _wait(self.connected, within_s)

    async def wait_subscribed(self, within_s: float) -> bool:
        return await _wait(self.subscribed, within_s)

    async def batches(self, max_batch: int = 500) -> AsyncIterator[list[InboundMessage]]:
        """Yield lists of received messages, alarms first: what is ready, or the next to come."""
        async for _lane, batch in self.lane_batches(max_batch):
            yield batch

    async def lane_batches(
        self, max_batch: int = 500
    ) -> AsyncIterator[tuple[Lane, list[InboundMessage]]]:
        """`batches()`, each with the lane it was taken from.

        An alarm that arrives while an ordinary batch is being stored waits for that batch, so
        ordinary batches are sized to take about `ORDINARY_BATCH_S` each, going by the last
        one: a machine that stores fast still gets large batches, a busy one smaller ones.
        """
        size = max_batch
        while not self._stopping:
            taken = self.lanes.take(size)
            if taken is None:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            if self._paused and not self.lanes.full():
                self._resume_reading()
            began = time.perf_counter()
            yield taken
            lane, batch = taken
            if lane is Lane.ORDINARY:
                per_message = (time.perf_counter() - began) / len(batch)
                fits = int(ORDINARY_BATCH_S / per_message) if per_message > 0 else max_batch
                size = max(MIN_BATCH, min(max_batch, fits))

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        """Tell the broker these messages are safely stored."""
        if not self.connected.is_set():
            # Not while (re)connecting: a PUBACK queued then would go out before the CONNECT.
            # The broker sends these again (DUP) and the redelivery is recognised.
            return
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain)

    # The connection, on the event loop.

    async def _keep_connected(self) -> None:
        """Connect, serve the connection until it is lost, wait, again; until leaving."""
        s = self.settings
        delay = s.reconnect_min_s
        while not self._leaving.is_set():
            self._closed.clear()
            log.info("connecting to %s as %s", s.display_url(), s.client_id)
            try:
                # TCP and TLS handshakes block: in a thread, the loop goes on meanwhile.
                await asyncio.to_thread(self._client.reconnect)
            except OSError as exc:
                log.warning("cannot reach the broker at %s (%s); retrying", s.display_url(), exc)
            else:
                self._watch()
                if self._leaving.is_set():
                    self._client.disconnect()
                heard = await self._serve()
                if heard:
                    delay = s.reconnect_min_s
            if self._leaving.is_set():
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leaving.wait(), delay)
            delay = min(delay * 2, s.reconnect_max_s)

    def _watch(self) -> None:
        """Hand the socket just connected to the loop: read it (unless the buffer is full) and
        write what paho queued meanwhile (the CONNECT)."""
        assert self._loop is not None
        sock = self._client.socket()
        if sock is None:
            self._closed.set()
            return
        self._sock = sock
        if not self._paused:
            self._loop.add_reader(sock, self._on_readable)
        self._loop.add_writer(sock, self._on_writable)

    def _unwatch(self, sock: Any) -> None:
        assert self._loop is not None
        self._loop.remove_reader(sock)
        self._loop.remove_writer(sock)
        self._sock = None
        self._closed.set()

    async def _serve(self) -> bool:
        """Keep the connection alive until its socket closes; whether the broker accepted it."""
        self._accepted = False
        while not self._closed.is_set():
            try:
                await asyncio.wait_for(self._closed.wait(), MISC_INTERVAL_S)
            except TimeoutError:
                self._client.loop_misc()
        return self._accepted

    def _on_readable(self) -> None:
        read = self._client.read_packet
        for _ in range(READ_PACKETS):
            if read() or self._paused:  # MQTT_ERR_AGAIN (-1): the socket ran dry; >0: lost
                return
        # More may be waiting; decrypted TLS bytes are invisible to the selector.
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket) and sock.pending() and self._loop is not None:
            self._loop.call_soon(self._on_readable)

    def _on_writable(self) -> None:
        self._client.loop_write()

    def _pause_reading(self) -> None:
        self._paused = True
        if self._sock is not None and self._loop is not None:
            self._loop.remove_reader(self._sock)

    def _resume_reading(self) -> None:
        self._paused = False
        if self._sock is not None and self._loop is not None:
            self._loop.add_reader(self._sock, self._on_readable)
            self._loop.call_soon(self._on_readable)  # bytes TLS already decrypted

    # paho callbacks: they run on the event loop, within `_on_readable` and `_on_writable`.

    def _on_connect(
        self,
        client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        if reason.is_failure:
            log.error("broker refused the connection: %s", reason)
            return
        log.info("connected (session present: %s)", flags.session_present)
        # Subscribing again on a resumed session is harmless and picks up changed sources.
        if self.subscriptions:
            client.subscribe([(topic, 1) for topic in self.subscriptions])
        self._accepted = True
        self.connected.set()

    def _on_disconnect(
        self,
        _client: paho.Client,
        _userdata: Any,
        _flags: paho.DisconnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        self.connected.clear()
        self.subscribed.clear()
        if not self._leaving.is_set():
            log.warning("disconnected from the broker (%s); reconnecting", reason)

    def _on_subscribe(
        self,
        _client: paho.Client,
        _userdata: Any,
        _mid: int,
        reasons: list[ReasonCode],
        _properties: Any,
    ) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused subscriptions: %s", ", ".join(refused))
        self.subscribed.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, msg: paho.MQTTMessage) -> None:
        try:
            topic = msg.topic
        except UnicodeDecodeError:
            # MQTT topics must be UTF-8; keep the message so it can be dead-lettered.
            topic = bytes(msg._topic).decode("utf-8", errors="backslashreplace")
        item = InboundMessage(
            topic=topic,
            payload=bytes(msg.payload),
            qos=msg.qos,
            mid=msg.mid,
            retain=bool(msg.retain),
            received_at=self.clock.now(),
            dup=bool(msg.dup),
        )
        self.lanes.put(item)
        self._arrived.set()
        if self.lanes.full() and not self._paused:
            self._pause_reading()  # backpressure rather than drop: the broker keeps the rest

    def _on_socket_close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        if sock is self._sock and threading.get_ident() == self._loop_thread:
            self._unwatch(sock)

    def _on_socket_register_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        # Called in the connecting thread too (the CONNECT packet): `_watch` then covers it.
        if sock is self._sock and self._loop is not None:
            self._loop.add_writer(sock, self._on_writable)

    def _on_socket_unregister_write(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        if sock is self._sock and self._loop is not None:
            self._loop.remove_writer(sock)


async def _wait(event: asyncio.Event, within_s: float) -> bool:
    try:
        await asyncio.wait_for(event.wait(), within_s)
    except TimeoutError:
        return False
    return True


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("the broker connection failed; no more messages", exc_info=exc)
