"""Record live broker traffic as a recording (the simulators' JSON lines), for `replay` later.

Each message becomes {"ts": arrival epoch seconds, "topic": ..., "payload": text} with
"retain": true on retained ones; a payload that is not UTF-8 keeps its bytes as \\x escapes.
Every line is flushed as it is written, so a recording cut short by Ctrl-C is still whole.
"""

from __future__ import annotations

import json
import os
import queue
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import paho.mqtt.client as paho

from simulators.broker import BrokerUnavailable, Connection

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


class _Session(Connection):
    """A clean-session subscriber (QoS 1) feeding `inbox` from paho's network thread; ready once
    the broker has granted the subscriptions."""

    def __init__(
        self,
        url: str,
        topics: Sequence[str],
        inbox: queue.Queue[tuple[float, str, bytes, bool]],
        ca_file: Path | None,
    ) -> None:
        if not topics:
            raise RecorderError("no topics to record (no sources configured and no --topic)")
        try:
            # Its own client id, so recording never takes over the gateway's persistent session.
            super().__init__(
                url,
                client_id=f"iot-gateway-record-{os.getpid()}-{time.time_ns() % 1_000_000}",
                clean_session=True,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                ca_file=str(ca_file) if ca_file else None,
            )
        except ValueError as exc:
            raise RecorderError(str(exc)) from None
        self._topics = list(topics)
        self._inbox = inbox
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def __enter__(self) -> _Session:
        try:
            return super().__enter__()
        except BrokerUnavailable as exc:
            raise RecorderError(str(exc)) from None

    def _after_connect(self, client: paho.Client) -> bool:
        # Subscribing on every connection, not once, so a reconnect resubscribes (clean session).
        client.subscribe([(topic, 1) for topic in self._topics])
        return False  # ready when the subscription is granted

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, _mid: int, reasons: Any, _props: Any
    ) -> None:
        refused = [r for r in reasons if r.is_failure]
        if refused:
            self._refuse(f"subscription refused: {refused[0]}")
        self._ready.set()

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        self._inbox.put((time.time(), message.topic, bytes(message.payload), bool(message.retain)))
