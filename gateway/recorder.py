"""Record live broker traffic as a recording (the simulators' JSON lines), for `replay` later.

Each message becomes {"ts": arrival epoch seconds, "topic": ..., "payload": text} with
"retain": true on retained ones; a payload that is not UTF-8 keeps its bytes as \\x escapes.
Every line is flushed as it is written, so a recording cut short by Ctrl-C is still whole.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

CONNECT_TIMEOUT_S = 10.0


class RecorderError(Exception):
    """The broker could not be reached or refused us; the message says why in one line."""


def recording_line(ts: float, topic: str, payload: bytes, retain: bool) -> str:
    """One message as a recording line (no newline)."""
    line: dict[str, object] = {
        "ts": ts,
        "topic": topic,
        "payload": payload.decode("utf-8", "backslashreplace"),
    }
    if retain:
        line["retain"] = True
    return json.dumps(line, ensure_ascii=False)


def record(
    broker_url: str,
    topics: Sequence[str],
    out: Path,
    *,
    duration_s: float | None = None,
    count: int | None = None,
    ca_file: Path | None = None,
) -> int:
    """Write what arrives on `topics` to `out` until the duration, the count or Ctrl-C."""
    inbox: queue.Queue[tuple[float, str, bytes, bool]] = queue.Queue()
    session = _Session(broker_url, topics, inbox, ca_file)
    written = 0
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RecorderError(f"cannot write {out}: {exc.strerror or exc}") from None
    # The file appears once the subscription stands: whoever waits for it misses nothing.
    with session, _open_for_writing(out) as file:
        try:
            while count is None or written < count:
                wait = None if deadline is None else deadline - time.monotonic()
                if wait is not None and wait <= 0:
                    break
                try:
                    # Short waits so Ctrl-C is noticed promptly.
                    item = inbox.get(timeout=0.5 if wait is None else min(wait, 0.5))
                except queue.Empty:
                    continue
                file.write(recording_line(*item) + "\n")
                file.flush()
                written += 1
        except KeyboardInterrupt:
            pass
    return written


def _open_for_writing(out: Path) -> TextIO:
    try:
        return out.open("w", encoding="utf-8")
    except OSError as exc:
        raise RecorderError(f"cannot write {out}: {exc.strerror or exc}") from None


class _Session:
    """A clean-session paho subscriber (QoS 1) feeding `inbox` from paho's network thread."""

    def __init__(
        self,
        url: str,
        topics: Sequence[str],
        inbox: queue.Queue[tuple[float, str, bytes, bool]],
        ca_file: Path | None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise RecorderError(f"not an mqtt://[user:pass@]host[:port] URL: {url!r}")
        if not topics:
            raise RecorderError("no topics to record (no sources configured and no --topic)")
        tls = parts.scheme == "mqtts"
        self._where = f"{parts.hostname}:{parts.port or (8883 if tls else 1883)}"
        self._host = parts.hostname
        self._port = parts.port or (8883 if tls else 1883)
        self._topics = list(topics)
        self._inbox = inbox
        self._ready = threading.Event()
        self._refused: str | None = None
        # Its own client id, so recording never takes over the gateway's persistent session.
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"iot-gateway-record-{os.getpid()}-{time.time_ns() % 1_000_000}",
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        if parts.username:
            self.client.username_pw_set(
                unquote(parts.username), unquote(parts.password) if parts.password else None
            )
        if tls:
            self.client.tls_set(ca_certs=str(ca_file) if ca_file else None)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def __enter__(self) -> _Session:
        try:
            self.client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            raise RecorderError(f"cannot reach the broker at {self._where}: {exc}") from None
        self.client.loop_start()
        if not self._ready.wait(CONNECT_TIMEOUT_S) or self._refused:
            self.close()
            why = self._refused or f"no answer within {CONNECT_TIMEOUT_S:g} s"
            raise RecorderError(f"the broker at {self._where} did not accept us: {why}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any
    ) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            self._ready.set()
            return
        # Subscribing here, not once, so a reconnect resubscribes (the session is clean).
        client.subscribe([(topic, 1) for topic in self._topics])

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            self._refused = f"subscription refused: {refused[0]}"
        self._ready.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self._inbox.put((time.time(), message.topic, bytes(message.payload), bool(message.retain)))
