"""The simulators against a real broker: a live run arrives whole, load mode keeps its rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gateway.ingest.embedded_broker import free_port
from simulators import BrokerUnavailable, LivePublisher, Neighbourhood, run_load
from simulators.encoders import ZONE

pytestmark = pytest.mark.mqtt


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.topics: list[str] = []
        self.retained = 0

    def __len__(self) -> int:
        with self.lock:
            return len(self.topics)


@contextmanager
def subscriber(url: str, topic_filter: str) -> Iterator[Counter]:
    parts = urlsplit(url)
    got = Counter()
    ready = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2)

    def on_connect(c: Any, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        c.subscribe(topic_filter, qos=1)

    def on_message(_c: Any, _u: Any, message: paho.MQTTMessage) -> None:
        with got.lock:
            got.topics.append(message.topic)
            got.retained += message.retain

    client.on_connect = on_connect
    client.on_subscribe = lambda *_: ready.set()
    client.on_message = on_message
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    try:
        assert ready.wait(10), "the subscriber could not subscribe"
        yield got
    finally:
        client.disconnect()
        client.loop_stop()


def _wait_for(counter: Counter, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while len(counter) < n and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_live_run_at_high_speed_arrives_whole(mqtt_url: str, unique_id: str):
    prefix = f"sim-{unique_id}"
    nb = Neighbourhood(
        3,
        seed=1,
        start=datetime(2026, 3, 2, 6, tzinfo=ZONE),
        days=0.25,
        scenario="smoke",
        prefix=prefix,
    )
    expected = list(nb.messages())
    progress: list[tuple[int, float]] = []
    with subscriber(mqtt_url, f"{prefix}/#") as got:
        summary = LivePublisher(
            mqtt_url, speed=0, progress=lambda n, ts: progress.append((n, ts))
        ).run(expected)
        _wait_for(got, len(expected))
    assert summary.messages == len(expected)
    assert summary.simulated_s == expected[-1].ts - expected[0].ts
    assert sorted(got.topics) == sorted(m.topic for m in expected)
    assert progress[-1] == (len(expected), expected[-1].ts)


def test_a_live_run_is_paced_by_its_speed(mqtt_url: str, unique_id: str):
    nb = Neighbourhood(
        1, seed=1, start=datetime(2026, 3, 2, 6, tzinfo=ZONE), days=0.05, prefix=f"sim-{unique_id}"
    )
    messages = list(nb.messages())
    span = messages[-1].ts - messages[0].ts
    summary = LivePublisher(mqtt_url, speed=span / 1.0).run(messages)
    assert 0.9 <= summary.wall_s <= 3.0


def test_stop_ends_a_live_run_early(mqtt_url: str, unique_id: str):
    nb = Neighbourhood(
        2, seed=1, start=datetime(2026, 3, 2, tzinfo=ZONE), days=1.0, prefix=f"sim-{unique_id}"
    )
    publisher = LivePublisher(mqtt_url, speed=3600)
    threading.Timer(0.5, publisher.stop).start()
    summary = publisher.run(nb.messages())
    assert summary.stopped
    assert summary.wall_s < 3


def test_a_broker_that_is_not_there_fails_fast_and_clearly():
    url = f"mqtt://127.0.0.1:{free_port()}"
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=r"127\.0\.0\.1"):
        LivePublisher(url, connect_timeout_s=2).run([])
    assert time.monotonic() - began < 5


def test_load_mode_keeps_its_target_rate(mqtt_url: str, unique_id: str):
    prefix = f"load-{unique_id}"
    with subscriber(mqtt_url, f"{prefix}/#") as got:
        summary = run_load(mqtt_url, households=200, rate=500, duration_s=2.0, prefix=prefix)
        _wait_for(got, summary.sent)
    assert summary.sent == 1000
    assert summary.delivered == summary.sent
    assert abs(summary.achieved_rate - 500) <= 50, summary
    assert summary.shortfall_pct <= 10
    assert len(got) == summary.sent
    assert "msg/s achieved" in summary.describe()
