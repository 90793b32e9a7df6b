"""Simulated elders' homes publishing native device payloads, with scheduled incidents.

Time is compressed: `speed` simulated seconds pass per real second, so a morning's water and
electricity use arrives in a minute. Payloads carry no `ts` (the gateway stamps arrival time),
so accelerated homes never report times in the future.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Incident:
    """Something that happens `after_s` real seconds into the run."""

    household_id: str
    kind: str  # "smoke" or "sos"
    after_s: float


@dataclass(slots=True)
class Home:
    household_id: str
    water_total_l: float
    energy_total_kwh: float
    battery_pct: float


DEVICES = {
    "smoke-1": "smoke_detector",
    "water-1": "water_meter",
    "power-1": "power_meter",
    "btn-1": "call_button",
    "hm-1": "health_monitor",
}


class HomeSimulator:
    """Publishes telemetry for `homes` to an MQTT broker until stopped."""

    def __init__(
        self,
        broker_url: str,
        household_ids: Sequence[str],
        *,
        speed: float = 60.0,
        incidents: Sequence[Incident] = (),
        report_every_s: float = 5.0,
        seed: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.homes = [
            Home(
                h,
                water_total_l=self.rng.uniform(50_000, 200_000),
                energy_total_kwh=self.rng.uniform(1_000, 6_000),
                battery_pct=self.rng.uniform(60, 100),
            )
            for h in household_ids
        ]
        self.speed = speed
        self.incidents = sorted(incidents, key=lambda i: i.after_s)
        self.report_every_s = report_every_s
        self._stop = threading.Event()
        parts = urlsplit(broker_url)
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=f"home-sim-{self.rng.randrange(1 << 30)}"
        )
        if parts.username:
            self._client.username_pw_set(parts.username, parts.password)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 1883
        self._thread = threading.Thread(target=self._run, name="home-simulator", daemon=True)
        self.published = 0

    def start(self) -> None:
        self._client.connect(self._host, self._port)
        self._client.loop_start()
        for home in self.homes:
            for device in DEVICES:
                self._publish(f"homes/{home.household_id}/{device}/status", "online", retain=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._client.loop_stop()
        self._client.disconnect()

    def _run(self) -> None:
        elapsed = 0.0
        pending = list(self.incidents)
        while not self._stop.wait(self.report_every_s):
            elapsed += self.report_every_s
            sim_minutes = self.report_every_s * self.speed / 60
            for home in self.homes:
                self._report(home, sim_minutes)
            while pending and pending[0].after_s <= elapsed:
                self._incident(pending.pop(0))

    def _report(self, home: Home, sim_minutes: float) -> None:
        h = home.household_id
        # An elderly person alone uses roughly 60-120 litres and 2-5 kWh a day.
        home.water_total_l += self.rng.uniform(0, 90) * sim_minutes / 1440
        home.energy_total_kwh += self.rng.uniform(2, 5) * sim_minutes / 1440
        home.battery_pct = max(home.battery_pct - 0.001 * sim_minutes, 5)
        self._send(h, "water-1", {"water_total_l": round(home.water_total_l, 1)})
        self._send(
            h,
            "power-1",
            {
                "power_w": round(self.rng.choice([35.0, 60.0, 800.0, 1200.0]), 1),
                "energy_total_kwh": round(home.energy_total_kwh, 3),
            },
        )
        self._send(h, "smoke-1", {"smoke": False, "battery_pct": round(home.battery_pct)})
        if self.rng.random() < 0.2:
            self._send(
                h,
                "hm-1",
                {
                    "heart_rate_bpm": self.rng.randint(60, 88),
                    "spo2_pct": self.rng.randint(94, 99),
                    "bp_systolic_mmhg": self.rng.randint(115, 145),
                    "bp_diastolic_mmhg": self.rng.randint(70, 90),
                },
            )

    def _incident(self, incident: Incident) -> None:
        log.info("simulated incident: %s in %s", incident.kind, incident.household_id)
        if incident.kind == "smoke":
            self._send(incident.household_id, "smoke-1", {"smoke": True})
        elif incident.kind == "sos":
            self._send(incident.household_id, "btn-1", {"event": "sos"}, channel="event")

    def _send(
        self, household_id: str, device: str, body: dict[str, object], channel: str = "telemetry"
    ) -> None:
        payload = {"kind": DEVICES[device], **body}
        self._publish(f"homes/{household_id}/{device}/{channel}", json.dumps(payload))

    def _publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        self._client.publish(topic, payload, qos=1, retain=retain)
        self.published += 1
