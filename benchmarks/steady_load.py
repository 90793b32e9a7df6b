"""Ordinary background traffic at a steady rate, switched on and off by the process that runs it.

--households homes × 4 native devices (power meter, water meter, health monitor, smoke detector
at rest), payloads rendered by the simulators' encoders with normal values and the current time,
published QoS 1 with paho-mqtt at --rate msg/s on a fixed schedule (message k due k/rate s after
the switch was turned on). Commands on stdin, one a line; one JSON answer a line on stdout:

- `on`: start publishing (answer `{"ok": true}`);
- `count`: messages the broker has acknowledged so far (`acked_total`);
- `off`: stop, wait for the outstanding acknowledgements, answer this phase's figures;
- `quit`: stop and leave.

Used by first_sms.py; by hand:

    python benchmarks/steady_load.py --port 1883 --prefix bench --households 500 --rate 2000
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import random
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from simulators.encoders import Encoder, Observation
from simulators.model import Device, Format, Role
from simulators.routine import draw_profile, normal_vitals

# Four devices a home, in turn: meters report most, as in real homes.
DEVICES = (
    (Role.POWER, "power-1", False),
    (Role.WATER, "water-1", True),
    (Role.HEALTH, "health-1", False),
    (Role.SMOKE, "smoke-1", True),
)


def ordinary_traffic(prefix: str, households: int, seed: int) -> Iterator[tuple[str, str]]:
    """Endless ordinary native telemetry, households and devices in turn, stamped now."""
    r = random.Random(seed)
    homes = [f"BG{h:04d}" for h in range(households)]
    encoders = [
        (hid, Encoder(Device(hid, device, role, Format.NATIVE, battery), f"{prefix}/homes", True))
        for hid in homes
        for role, device, battery in DEVICES
    ]
    profiles = {hid: draw_profile(seed, hid) for hid in homes}
    water = [r.uniform(20_000, 900_000) for _ in encoders]
    energy = [r.uniform(50, 3000) for _ in encoders]
    while True:
        for n, (hid, enc) in enumerate(encoders):
            role = enc.device.role
            battery = r.uniform(40, 100) if enc.device.battery else None
            if role is Role.POWER:
                watts = r.choice((3.0, 15.0, 85.0, 110.0, 1800.0))
                energy[n] += watts / 3.6e6
                obs = Observation(power_w=watts, energy_kwh=energy[n])
            elif role is Role.WATER:
                water[n] += r.choice((0.0, 0.0, 0.0, 0.1))
                obs = Observation(water_l=water[n], battery_pct=battery)
            elif role is Role.HEALTH:
                obs = Observation(vitals=normal_vitals(profiles[hid], r))
            else:
                obs = Observation(smoke=False, battery_pct=battery)
            for m in enc.observe(time.time(), obs):
                yield m.topic, m.payload


def publish_when_on(port: int, prefix: str, households: int, rate: float, seed: int) -> None:
    """Publish at `rate` while switched on; commands on stdin, one JSON answer a line on stdout:
    `on`, `count` (acknowledged so far), `off` (this phase's figures), `quit`."""
    commands: queue.Queue[str] = queue.Queue()

    def read_commands() -> None:
        for line in sys.stdin:
            commands.put(line.strip())

    threading.Thread(target=read_commands, daemon=True).start()
    acked = 0
    lock = threading.Lock()

    def on_publish(*_: Any) -> None:
        nonlocal acked
        with lock:
            acked += 1

    c = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.on_publish = on_publish
    c.connect("127.0.0.1", port)
    c.loop_start()
    stream = ordinary_traffic(prefix, households, seed)
    sent_total = 0

    def answer(body: dict[str, Any]) -> None:
        print(json.dumps(body), flush=True)

    while True:
        command = commands.get()
        if command == "count":
            answer({"acked_total": acked})
        elif command == "on":
            answer({"ok": True})
            began = time.monotonic()
            sent = 0
            worst_behind = 0.0
            while True:
                try:
                    command = commands.get_nowait()
                except queue.Empty:
                    command = ""
                if command == "count":
                    answer({"acked_total": acked})
                elif command in ("off", "quit"):
                    break
                now = time.monotonic()
                due = math.floor((now - began) * rate) + 1
                worst_behind = max(worst_behind, (due - sent) / rate)
                while sent < due:
                    topic, payload = next(stream)
                    c.publish(topic, payload, qos=1)
                    sent += 1
                time.sleep(max(0.0, began + sent / rate - time.monotonic()))
            stopped = time.monotonic()
            sent_total += sent
            deadline = stopped + 10
            while acked < sent_total and time.monotonic() < deadline:
                time.sleep(0.005)
            seconds = stopped - began
            answer(
                {
                    "sent": sent,
                    "seconds": round(seconds, 3),
                    "rate": round(sent / seconds, 1),
                    "acked_total": acked,
                    "unacked_total": sent_total - acked,
                    "worst_behind_schedule_ms": round(worst_behind * 1000, 1),
                }
            )
        if command == "quit":
            break
    c.disconnect()
    c.loop_stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=1883, help="broker on 127.0.0.1")
    parser.add_argument("--prefix", required=True, help="topics: PREFIX/homes/...")
    parser.add_argument("--households", type=int, default=500)
    parser.add_argument("--rate", type=float, default=2000.0, help="messages a second")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    publish_when_on(args.port, args.prefix, args.households, args.rate, args.seed)


if __name__ == "__main__":
    main()
