"""Load mode: many households publishing small, realistic telemetry at a target rate.

Messages are spread over households and their devices in turn and paced on a fixed schedule
(message k is due k/rate seconds after the start), so the aggregate rate is the target whether
there are ten households or ten thousand. When the client or broker cannot keep up, sending
falls behind the schedule and the summary says by how much.

QoS defaults to 0, as Zigbee2MQTT and Tasmota publish by default: the load is then on the
broker and the gateway, not on the publisher's acknowledgement round trips. Pass qos=1 to load
the broker's persistence too. Payloads carry the real time (it is a live run).
"""

from __future__ import annotations

import itertools
import math
import random
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from simulators.broker import BrokerUnavailable, Outbox
from simulators.encoders import Encoder, Observation
from simulators.model import Device, Format, Message, Role

__all__ = ["BrokerUnavailable", "LoadSummary", "load_messages", "run_load"]

ALL_FORMATS: tuple[Format, ...] = tuple(Format)
# The device each format contributes: meters report most often in real homes.
_DEVICE: dict[Format, tuple[Role, str, bool]] = {
    Format.NATIVE: (Role.SMOKE, "smoke-1", True),
    Format.ZIGBEE2MQTT: (Role.POWER, "kitchen-plug", False),
    Format.TASMOTA: (Role.POWER, "tv-plug", False),
    Format.SHELLY: (Role.POWER, "fridge-plug", False),
    Format.WMBUSMETERS: (Role.WATER, "water-1", False),
}
PROGRESS_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class LoadSummary:
    target_rate: float
    sent: int
    """Messages handed to the client."""
    delivered: int
    """Messages the client finished (written to the socket for QoS 0, acknowledged for QoS 1)."""
    wall_s: float
    achieved_rate: float
    """Delivered messages per second over the whole run, until the last was finished."""

    @property
    def shortfall_pct(self) -> float:
        """How far below the target the run stayed, in percent (0 when it kept up)."""
        return max(0.0, 100.0 * (1 - self.achieved_rate / self.target_rate))

    def describe(self) -> str:
        """One line for a person: target, achieved, and the shortfall if any."""
        line = (
            f"load: {self.delivered}/{self.sent} messages in {self.wall_s:.1f} s, "
            f"{self.achieved_rate:.0f} msg/s achieved of {self.target_rate:g} targeted"
        )
        return line + (f" ({self.shortfall_pct:.0f} % short)" if self.shortfall_pct >= 1 else "")


def load_messages(
    households: int,
    *,
    seed: int = 0,
    formats: Sequence[Format | str] = ALL_FORMATS,
    prefix: str = "homes",
    clock: Callable[[], float] = time.time,
) -> Iterator[Message]:
    """An endless stream of telemetry, households and devices in turn, stamped by `clock`."""
    kinds = [Format(f) for f in formats]
    if households < 1 or not kinds:
        raise ValueError("need at least one household and one format")
    r = random.Random(seed)
    encoders = []
    for h in range(1, households + 1):
        hid = f"LOAD{h:05d}"
        for fmt in kinds:
            role, device_id, battery = _DEVICE[fmt]
            encoders.append(Encoder(Device(hid, device_id, role, fmt, battery), prefix, True))
    water = [r.uniform(20_000, 900_000) for _ in encoders]
    energy = [r.uniform(50, 3000) for _ in encoders]
    for n in itertools.cycle(range(len(encoders))):
        enc = encoders[n]
        watts = r.choice((3.0, 15.0, 85.0, 110.0, 1800.0))
        water[n] += r.choice((0.0, 0.0, 1.5, 6.0))
        energy[n] += watts / 3.6e6 * 300
        obs = Observation(
            smoke=False,
            battery_pct=r.uniform(40, 100) if enc.device.battery else None,
            power_w=watts,
            energy_kwh=energy[n],
            water_l=water[n],
        )
        yield from enc.observe(float(int(clock())), obs)


def run_load(
    broker_url: str,
    households: int,
    rate: float,
    duration_s: float,
    *,
    seed: int = 0,
    formats: Sequence[Format | str] = ALL_FORMATS,
    qos: int = 0,
    prefix: str = "homes",
    max_outstanding: int = 5000,
    progress: Callable[[int, float], None] | None = None,
) -> LoadSummary:
    """Publish at `rate` messages/s for `duration_s`; `progress(sent, elapsed_s)` twice a second."""
    if rate <= 0 or duration_s <= 0:
        raise ValueError("rate and duration must be positive")
    total = max(1, math.floor(rate * duration_s))
    stream = load_messages(households, seed=seed, formats=formats, prefix=prefix)
    sent = 0
    with Outbox(
        broker_url, client_id=f"care-load-{secrets.token_hex(4)}", max_outstanding=max_outstanding
    ) as outbox:
        began = time.monotonic()
        next_report = began + PROGRESS_EVERY_S
        while sent < total:
            now = time.monotonic()
            due = min(total, math.floor((now - began) * rate) + 1)
            while sent < due:
                m = next(stream)
                outbox.publish(m.topic, m.payload, qos=qos, retain=False)
                sent += 1
            if progress is not None and now >= next_report:
                progress(sent, now - began)
                next_report = now + PROGRESS_EVERY_S
            if sent < total:
                time.sleep(max(0.0, began + sent / rate - time.monotonic()))
        outbox.drain(timeout_s=max(10.0, duration_s))
        wall = time.monotonic() - began
        delivered = outbox.finished
    if progress is not None:
        progress(sent, wall)
    return LoadSummary(rate, sent, delivered, wall, delivered / wall if wall > 0 else 0.0)
