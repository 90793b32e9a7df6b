"""`iot-gateway run` as a real process: the issue's done-when checks, end to end."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from gateway.ingest.embedded_broker import free_port
from tests.fakes.twilio import FakeTwilio
from tests.integration.harness import HOUSEHOLD, Publisher

pytestmark = pytest.mark.mqtt

TOKEN = "service-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Service:
    """One `iot-gateway run` process with its own config, database and ports."""

    def __init__(
        self,
        tmp: Path,
        mqtt_url: str,
        prefix: str,
        env: dict[str, str],
        args: Sequence[str] = (),
        *,
        database_url: str | None = None,
        name: str = "gateway",
        mqtt_extra: str = "",
    ) -> None:
        """`mqtt_extra`: more lines for the config's [mqtt] table (a shared group)."""
        self.args = list(args)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db_path = tmp / f"{name}.db"
        self.database_url = database_url or f"sqlite+aiosqlite:///{self.db_path}"
        self.log = tmp / f"{name}.log"
        config = tmp / f"{name}.toml"
        config.write_text(
            f"""
[mqtt]
url = "{mqtt_url}"
client_id = "svc-{prefix}-{name}"
{mqtt_extra}

[database]
url = "{self.database_url}"

[http]
port = {self.port}

[[sources]]
name = "native"
format = "native"
topics = [
    "{prefix}/homes/{{household}}/{{device}}/telemetry",
    "{prefix}/homes/{{household}}/{{device}}/event",
]
""",
            encoding="utf-8",
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")},
            "GATEWAY_CONFIG": str(config),
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gateway.cli", "run", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/api/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.kill()  # not left running behind the failed test
        raise AssertionError("gateway did not become healthy:\n" + self.log.read_text())

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise

    def count(self, sql: str) -> int:
        with sqlite3.connect(self.db_path) as conn:
            return int(conn.execute(sql).fetchone()[0])


@pytest.fixture
def service(tmp_path: Path, mqtt_url: str, unique_id: str) -> Iterator[Service]:
    svc = Service(tmp_path, mqtt_url, unique_id, {})
    yield svc
    svc.stop()


def test_smoke_alarm_reaches_api_within_2s_and_sms_reaches_twilio(
    tmp_path: Path, mqtt_url: str, unique_id: str, fake_twilio: FakeTwilio
):
    svc = Service(
        tmp_path,
        mqtt_url,
        unique_id,
        {
            "GATEWAY_TWILIO_ACCOUNT_SID": fake_twilio.account_sid,
            "GATEWAY_TWILIO_AUTH_TOKEN": fake_twilio.auth_token,
            "GATEWAY_TWILIO_FROM": "+15005550006",
            "GATEWAY_TWILIO_API_BASE_URL": fake_twilio.base_url,
        },
    )
    svc.start()
    publisher = Publisher(mqtt_url)
    try:
        created = httpx.post(f"{svc.url}/api/households", json=HOUSEHOLD, headers=AUTH)
        assert created.status_code == 201, created.text
        published_at = time.monotonic()
        publisher.send(
            f"{unique_id}/homes/H001/smoke-1/telemetry", {"kind": "smoke_detector", "smoke": True}
        )
        alert = None
        while time.monotonic() - published_at < 2.0:
            found = httpx.get(f"{svc.url}/api/alerts", headers=AUTH).json()
            if found:
                alert = found[0]
                break
            time.sleep(0.05)
        assert alert is not None, "no alert within 2 s"
        assert (alert["rule"], alert["severity"], alert["household_id"]) == (
            "smoke_alarm",
            "critical",
            "H001",
        )
        # A critical alert texts and calls the visitor and the first relative at once; the four
        # requests race each other, so find the visitor's SMS among them.
        fake_twilio.wait_for_requests(4, timeout=5)
        texts = {r.form["To"]: r for r in fake_twilio.messages}
        assert set(texts) == {"+8613900000000", "+8613700000000"}
        request = texts["+8613900000000"]
        assert request.path == f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json"
        assert request.auth_ok
        assert request.form["To"] == "+8613900000000"
        assert request.form["From"] == "+15005550006"
        assert "张桂兰" in request.form["Body"]
    finally:
        publisher.close()
        svc.stop()


def test_kill_9_mid_stream_then_restart_stores_every_message_exactly_once(
    service: Service, mqtt_url: str, unique_id: str
):
    service.start()
    created = httpx.post(f"{service.url}/api/households", json=HOUSEHOLD, headers=AUTH)
    assert created.status_code == 201
    total = 3000
    publisher = Publisher(mqtt_url)
    try:
        start = int(time.time()) - total  # a reading a second, up to now
        topic = f"{unique_id}/homes/H001/power-1/telemetry"
        for i in range(total):
            info = publisher.client.publish(
                topic, f'{{"kind":"power_meter","power_w":{i % 5000},"ts":{start + i}}}', qos=1
            )
            if i == total // 3:
                info.wait_for_publish(5)
                # Kill while the stream is still arriving.
                deadline = time.monotonic() + 10
                while service.count("SELECT count(*) FROM readings") == 0:
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                service.kill()
        info.wait_for_publish(10)
        stored_at_kill = service.count("SELECT count(*) FROM readings")
        assert 0 < stored_at_kill < total
        service.start()
        deadline = time.monotonic() + 60
        while service.count("SELECT count(*) FROM readings") < total:
            assert time.monotonic() < deadline, service.count("SELECT count(*) FROM readings")
            time.sleep(0.1)
        time.sleep(1.0)  # let any redelivery land before counting
        assert service.count("SELECT count(*) FROM readings") == total
        assert service.count("SELECT count(DISTINCT ts) FROM readings") == total
    finally:
        publisher.close()
