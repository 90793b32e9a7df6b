"""A paho-mqtt publisher for the simulators: connect or fail clearly, and bounded sending.

paho runs its network loop in its own thread. `Outbox` counts what was handed to paho and what
paho has finished (sent for QoS 0, acknowledged for QoS 1) and makes the caller wait when too
much is outstanding, so a slow broker slows the simulator down instead of filling memory.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Self
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion


class BrokerUnavailable(ConnectionError):
    """The broker could not be reached, refused us, or went away while publishing."""


class Connection:
    """A paho client connected to one broker, or a clear error when it cannot be.

    What the short-lived clients here share (the simulators' publisher, `iot-gateway record`):
    parse the URL, log in, TLS, connect and wait for the broker's answer. Subclasses add their
    callbacks; `_after_connect` runs on every (re)connection and says whether the connection is
    ready now or will be marked ready later (`_ready.set()`, e.g. once a subscription stands).
    """

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        clean_session: bool | None = None,
        connect_timeout_s: float = 10.0,
        ca_file: str | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp") or not parts.hostname:
            raise ValueError(f"not an mqtt://[user:pass@]host[:port] URL: {url!r}")
        self._tls = parts.scheme == "mqtts"
        self._host = parts.hostname
        self._port = parts.port or (8883 if self._tls else 1883)
        self._timeout = connect_timeout_s
        self._ready = threading.Event()
        self._refused: str | None = None
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=clean_session,
        )
        if parts.username:
            self.client.username_pw_set(
                unquote(parts.username), unquote(parts.password) if parts.password else None
            )
        if self._tls:
            self.client.tls_set(ca_certs=ca_file)
        self.client.connect_timeout = connect_timeout_s
        self.client.on_connect = self._on_connect

    def __enter__(self) -> Self:
        try:
            self.client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise BrokerUnavailable(f"cannot reach the broker at {self._where()}: {exc}") from exc
        self.client.loop_start()
        if not self._ready.wait(self._timeout) or self._refused:
            self.close()
            why = self._refused or f"no answer within {self._timeout:g} s"
            raise BrokerUnavailable(f"the broker at {self._where()} did not accept us: {why}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _where(self) -> str:
        return f"{'mqtts' if self._tls else 'mqtt'}://{self._host}:{self._port}"

    def _after_connect(self, client: paho.Client) -> bool:
        return True

    def _refuse(self, why: str) -> None:
        self._refused = why
        self._ready.set()

    def _on_connect(self, client: paho.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self._refuse(str(reason))
        elif self._after_connect(client):
            self._ready.set()


class Outbox(Connection):
    """A connected paho client with at most `max_outstanding` publishes unfinished."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str,
        max_outstanding: int = 1000,
        connect_timeout_s: float = 10.0,
    ) -> None:
        super().__init__(url, client_id=client_id, connect_timeout_s=connect_timeout_s)
        self._max = max_outstanding
        self._lock = threading.Condition()
        self._lost: str | None = None
        self.handed = 0
        self.finished = 0
        # paho's own queue for QoS 1 is bounded too, a little above ours.
        self.client.max_queued_messages_set(max_outstanding + 10)
        self.client.max_inflight_messages_set(min(max_outstanding, 1000))
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish

    def publish(self, topic: str, payload: str, *, qos: int, retain: bool = False) -> None:
        """Hand one message to paho, waiting while too many are outstanding."""
        with self._lock:
            while self.handed - self.finished >= self._max:
                self._check()
                self._lock.wait(0.5)
            self._check()
            self.handed += 1
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise BrokerUnavailable(f"publishing to {self._where()} failed: {info.rc.name}")

    def drain(self, timeout_s: float) -> bool:
        """Wait until every message handed over is finished; False if the time ran out."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self.finished < self.handed:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._check()
                self._lock.wait(min(left, 0.5))
        return True

    def _check(self) -> None:
        if self._lost is not None:
            raise BrokerUnavailable(f"lost the broker at {self._where()}: {self._lost}")

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if self._ready.is_set() and not self._refused:
            with self._lock:
                self._lost = str(reason)
                self._lock.notify_all()

    def _on_publish(self, _c: Any, _u: Any, _mid: int, _reason: Any, _p: Any) -> None:
        with self._lock:
            self.finished += 1
            self._lock.notify_all()
