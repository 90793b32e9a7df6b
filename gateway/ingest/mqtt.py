"""The broker connection: QoS 1 on a persistent session, messages acknowledged only once stored.

paho-mqtt runs its network loop in its own thread (it reconnects by itself, with backoff) and
hands messages to asyncio through two lanes (gateway/ingest/lanes.py): possible alarms go ahead
of ordinary readings, which wait in a bounded buffer. When that buffer is full the network
thread waits, the broker holds the rest, and nothing is dropped; the broker's window of
unacknowledged messages (mosquitto's `max_inflight_messages`) no larger than the buffer keeps
the thread reading, so an alarm is seen as soon as the broker sends it. Messages are
acknowledged (PUBACK) only after the caller has committed them, so a crash at any point loses
nothing: the broker redelivers what was not acknowledged, and the store ignores what it already
has. An alarm's batch is acknowledged before older ordinary messages: acknowledgements name
their packet id, and Mosquitto and EMQX take them in any order.
"""

from __future__ import annotations

import asyncio
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
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.clock import Clock
from gateway.config import MqttSettings
from gateway.ingest.lanes import Lane, Lanes

log = logging.getLogger(__name__)

ORDINARY_BATCH_S = 0.05
"""About how long storing one batch of ordinary messages may take (an alarm may wait that)."""
MIN_BATCH = 50
"""The smallest ordinary batch, whatever the time: fewer would cost more in commits."""


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
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        """Set once the broker has confirmed the subscriptions of the current connection."""
        self.lanes = lanes or Lanes(10_000, None)
        self._stopping = threading.Event()
        self._client = self._build_client()

    def _build_client(self) -> paho.Client:
        s = self.settings
        client = paho.Client(
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
        client.reconnect_delay_set(int(s.reconnect_min_s), int(s.reconnect_max_s))
        client.max_inflight_messages_set(s.max_inflight)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_connect_fail = self._on_connect_fail
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    async def __aenter__(self) -> MqttIngest:
        ep = self.settings.endpoint()
        log.info("connecting to %s as %s", self.settings.display_url(), self.settings.client_id)
        self._client.connect_async(ep.host, ep.port, keepalive=self.settings.keepalive_s)
        self._client.loop_start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping.set()
        # Unacknowledged messages stay at the broker and come back on the next start.
        await asyncio.to_thread(self._shutdown)

    def stop_receiving(self) -> None:
        """End `batches()` after the batch in hand; what is not acknowledged stays queued."""
        self._stopping.set()

    def _shutdown(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    async def wait_connected(self, within_s: float) -> bool:
        return await asyncio.to_thread(self.connected.wait, within_s)

    async def wait_subscribed(self, within_s: float) -> bool:
        return await asyncio.to_thread(self.subscribed.wait, within_s)

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
        while not self._stopping.is_set():
            taken = self.lanes.take(size, 0)  # no thread hop while there is work
            if taken is None:
                taken = await asyncio.to_thread(self.lanes.take, size, 0.5)
            if taken is None:
                continue
            began = time.perf_counter()
            yield taken
            lane, batch = taken
            if lane is Lane.ORDINARY:
                per_message = (time.perf_counter() - began) / len(batch)
                fits = int(ORDINARY_BATCH_S / per_message) if per_message > 0 else max_batch
                size = max(MIN_BATCH, min(max_batch, fits))

    def ack(self, messages: Sequence[InboundMessage]) -> None:
        """Tell the broker these messages are safely stored."""
        for message in messages:
            if message.qos > 0:
                self._client.ack(message.mid, message.qos)

    def publish(self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=qos, retain=retain)

    # paho callbacks: they run in paho's network thread.

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
        self.connected.set()

    def _on_connect_fail(self, _client: paho.Client, _userdata: Any) -> None:
        log.warning("cannot reach the broker at %s; retrying", self.settings.display_url())

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
        if not self._stopping.is_set():
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
        # Block (backpressure) rather than drop; give up only when shutting down, leaving the
        # message unacknowledged at the broker.
        self.lanes.put(item, self._stopping)
