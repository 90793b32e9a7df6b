"""Our brokers deliver QoS 1 messages to subscribers, and to persistent sessions while offline."""

from __future__ import annotations

import queue
import socket
import threading
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from gateway.ingest.embedded_broker import EmbeddedBroker, free_port

TIMEOUT_S = 5.0


class _Client:
    """A paho-mqtt client (MQTT 3.1.1, callback API v2) that records what it receives."""

    def __init__(self, url: str, client_id: str = "", *, clean_session: bool = True) -> None:
        parts = urlsplit(url)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 1883
        self.paho = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        if parts.username:
            self.paho.username_pw_set(parts.username, parts.password)
        self.messages: queue.Queue[paho.MQTTMessage] = queue.Queue()
        self.session_present: bool | None = None
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.paho.on_connect = self._on_connect
        self.paho.on_subscribe = self._on_subscribe
        self.paho.on_message = lambda _client, _userdata, message: self.messages.put(message)

    def _on_connect(
        self,
        _client: paho.Client,
        _userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        _properties: Any,
    ) -> None:
        assert not reason.is_failure, f"connection refused: {reason}"
        self.session_present = flags.session_present
        self._connected.set()

    def _on_subscribe(self, *_args: Any) -> None:
        self._subscribed.set()

    def __enter__(self) -> _Client:
        self.paho.connect(self._host, self._port, keepalive=10)
        self.paho.loop_start()
        assert self._connected.wait(TIMEOUT_S), "no CONNACK"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()

    def subscribe(self, topic: str) -> None:
        self._subscribed.clear()
        self.paho.subscribe(topic, qos=1)
        assert self._subscribed.wait(TIMEOUT_S), "no SUBACK"

    def publish(self, topic: str, payload: bytes) -> None:
        info = self.paho.publish(topic, payload, qos=1)
        info.wait_for_publish(TIMEOUT_S)
        assert info.is_published(), "no PUBACK"

    def next_message(self) -> paho.MQTTMessage:
        try:
            return self.messages.get(timeout=TIMEOUT_S)
        except queue.Empty:
            pytest.fail(f"no message within {TIMEOUT_S} s")


def _relays_qos1(url: str, topic: str) -> None:
    with _Client(url) as subscriber, _Client(url) as publisher:
        subscriber.subscribe(topic)
        publisher.publish(topic, b'{"kind":"call_button","event":"sos"}')
        message = subscriber.next_message()
    assert (message.topic, message.payload, message.qos) == (
        topic,
        b'{"kind":"call_button","event":"sos"}',
        1,
    )


@pytest.mark.mqtt
def test_broker_delivers_a_qos1_message_to_a_subscriber(mqtt_url: str, unique_id: str) -> None:
    _relays_qos1(mqtt_url, f"test/{unique_id}/homes/H001/btn-1/event")


@pytest.mark.mqtt
def test_persistent_session_receives_what_was_published_while_it_was_away(
    mqtt_url: str, unique_id: str
) -> None:
    topic = f"test/{unique_id}/homes/H001/smoke-1/telemetry"
    client_id = f"gw-test-{unique_id}"
    with _Client(mqtt_url, client_id, clean_session=False) as gateway:
        gateway.subscribe(topic)

    with _Client(mqtt_url) as publisher:
        publisher.publish(topic, b'{"smoke":true}')

    try:
        with _Client(mqtt_url, client_id, clean_session=False) as gateway:
            message = gateway.next_message()
            assert gateway.session_present
        assert (message.topic, message.payload) == (topic, b'{"smoke":true}')
    finally:
        # A clean-session connect discards the stored session, so a shared broker keeps nothing.
        with _Client(mqtt_url, client_id, clean_session=True):
            pass


def _port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_embedded_broker_relays_on_a_free_port_and_frees_it_when_stopped(unique_id: str) -> None:
    port = free_port()
    with EmbeddedBroker(port=port) as broker:
        assert broker.url == f"mqtt://127.0.0.1:{port}"
        assert not _port_is_free(port)
        _relays_qos1(broker.url, f"test/{unique_id}/homes/H001/btn-1/event")
    assert not broker.running
    assert _port_is_free(port)


def test_embedded_broker_on_a_taken_port_fails_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = EmbeddedBroker(port=taken.getsockname()[1])
        with pytest.raises(RuntimeError, match="address already in use"):
            broker.start()
    assert not broker.running
