"""`iot-gateway run --clock event`: time-driven rules follow the traffic's time, and what they
remember survives a restart (issue 5, items 5 and 7)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import HOUSEHOLD, Publisher
from tests.integration.test_service import AUTH, Service

pytestmark = pytest.mark.mqtt

# 09:00 in Asia/Shanghai: twelve hours later is 21:00, before the night hours begin.
T0 = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
STEP = timedelta(minutes=15)


def publish_meter(publisher: Publisher, topic: str, start: timedelta, end: timedelta) -> None:
    """A water meter whose total does not move (nobody uses water), every 15 min of event time."""
    at = start
    while at <= end:
        ts = (T0 + at).timestamp()
        publisher.send(topic, {"kind": "water_meter", "water_total_l": 1234.5, "ts": ts})
        at += STEP


def alerts(svc: Service) -> list[dict[str, Any]]:
    response = httpx.get(f"{svc.url}/api/alerts", headers=AUTH)
    assert response.status_code == 200, response.text
    return list(response.json())


def wait_for_rule(svc: Service, rule: str, within_s: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        found = [a for a in alerts(svc) if a["rule"] == rule]
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {rule} alert; alerts: {alerts(svc)}\n{svc.log.read_text()}")


def test_event_clock_runs_a_twelve_hour_rule_in_seconds(
    tmp_path: Path, mqtt_url: str, unique_id: str
):
    svc = Service(tmp_path, mqtt_url, unique_id, {}, args=["--clock", "event"])
    svc.start()
    publisher = Publisher(mqtt_url)
    topic = f"{unique_id}/homes/H001/water-1/telemetry"
    try:
        assert httpx.post(f"{svc.url}/api/households", json=HOUSEHOLD, headers=AUTH).is_success
        publish_meter(publisher, topic, timedelta(0), timedelta(hours=11, minutes=45))
        time.sleep(1.0)
        assert not [a for a in alerts(svc) if a["rule"] == "no_water_use"], "opened too early"
        publish_meter(publisher, topic, timedelta(hours=12), timedelta(hours=13))
        alert = wait_for_rule(svc, "no_water_use")
        assert datetime.fromisoformat(alert["opened_at"]) == T0 + timedelta(hours=12)
        assert (alert["device_id"], alert["severity"]) == ("household", "high")
    finally:
        publisher.close()
        svc.stop()


def test_the_twelve_hour_clock_survives_a_restart(tmp_path: Path, mqtt_url: str, unique_id: str):
    svc = Service(tmp_path, mqtt_url, unique_id, {}, args=["--clock", "event"])
    svc.start()
    publisher = Publisher(mqtt_url)
    topic = f"{unique_id}/homes/H001/water-1/telemetry"
    try:
        assert httpx.post(f"{svc.url}/api/households", json=HOUSEHOLD, headers=AUTH).is_success
        publish_meter(publisher, topic, timedelta(0), timedelta(hours=8))
        deadline = time.monotonic() + 20
        while svc.count("SELECT count(*) FROM readings") < 33:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        svc.stop()
        assert svc.count("SELECT count(*) FROM rule_state") == 1
        svc.start()
        # Without what was saved, the meter would seem to have watched only since 08:15 and
        # the alert would wait until 20:15.
        publish_meter(publisher, topic, timedelta(hours=8, minutes=15), timedelta(hours=13))
        alert = wait_for_rule(svc, "no_water_use")
        assert datetime.fromisoformat(alert["opened_at"]) == T0 + timedelta(hours=12)
    finally:
        publisher.close()
        svc.stop()
