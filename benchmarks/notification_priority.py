"""Smoke alarm published during a storm of lower notifications -> its SMS at the provider.

Issue 9: a storm of lower-severity SMS (there, one hub's 2,000 made-up devices; the flood limits
now make that one household alert) delayed a real smoke alarm's SMS by more than 15 s. A storm
that still happens: a power cut over a township, --storm households each reporting a device
offline (medium severity, one SMS each, all to the same duty visitor's phone). This runs the
Gateway in this process against a real MQTT broker and a SQLite file, with the real
TwilioNotifier talking to the fake Twilio API (tests/fakes/twilio.py) over loopback, answering
each request in --provider-ms.

Each sample: the storm is published in chunks of 500 so the broker's per-client queue
(Mosquitto's default is 1,000) drops none; once it is stored and its SMS are going out, another
household's smoke alarm is published (QoS 1). Measured: publish -> first (and last) of the
smoke alarm's SMS requests arriving at the fake, and how much of the storm was still unsent.
The next sample waits until the storm has drained.

    python benchmarks/notification_priority.py --broker mqtt://127.0.0.1:1883 --samples 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import paho.mqtt.client as paho
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from gateway.app import Gateway
from gateway.config import Settings
from gateway.ingest.embedded_broker import free_port
from gateway.store.tables import notifications

# The fake Twilio API lives with the tests, which are not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fakes.twilio import FakeTwilio, RecordedRequest

TOKEN = secrets.token_urlsafe(16)
CHUNK = 500
TARGET_S = 1.0


@dataclass(frozen=True)
class Sample:
    first_s: float
    """Publish -> the smoke alarm's first SMS request at the fake."""
    last_s: float
    """Publish -> its last one (one per visitor)."""
    storm_unsent: int
    """Storm SMS not yet requested when the first smoke SMS arrived."""


def household(hid: str, phones: list[str]) -> dict[str, Any]:
    return {
        "id": hid,
        "elder": {"name": f"老人{hid}"},
        "address": {"village": "基准村"},
        "visitors": [{"name": f"走访员{n}", "phone": p} for n, p in enumerate(phones)],
    }


class Bench:
    def __init__(self, gateway: Gateway, fake: FakeTwilio, device: paho.Client, prefix: str):
        self.gateway = gateway
        self.fake = fake
        self.device = device
        self.prefix = prefix

    def publish(self, hid: str, device_id: str, kind: str, payload: object) -> None:
        topic = f"{self.prefix}/homes/{hid}/{device_id}/{kind}"
        self.device.publish(topic, json.dumps(payload), qos=1)

    async def stored(self, phone: str) -> int:
        """Notifications written for `phone`."""
        async with self.gateway.db.connect() as conn:
            count = await conn.scalar(
                sa.select(sa.func.count())
                .select_from(notifications)
                .where(notifications.c.recipient_phone == phone)
            )
        return int(count or 0)

    def requests_to(self, phone: str) -> list[RecordedRequest]:
        return [r for r in self.fake.requests if r.form.get("To") == phone]

    async def until(
        self, what: str, check: Callable[[], Awaitable[bool]], timeout_s: float = 600.0
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while not await check():
            if time.monotonic() > deadline:
                raise TimeoutError(what)
            await asyncio.sleep(0.05)

    async def sample(self, n: int, storm: int, api: httpx.AsyncClient) -> Sample:
        kitchen = f"KIT{n:03d}"
        hub_phone = f"+86139{n:08d}"
        kitchen_phones = [f"+86138{n:08d}", f"+86137{n:08d}"]
        homes = [f"CUT{n:03d}-{h:05d}" for h in range(storm)]
        for body in [
            household(kitchen, kitchen_phones),
            *(household(h, [hub_phone]) for h in homes),
        ]:
            assert (await api.post("/api/households", json=body)).status_code == 201

        async def storm_stored(count: int) -> bool:
            return await self.stored(hub_phone) >= count

        for start in range(0, storm, CHUNK):
            end = min(start + CHUNK, storm)
            for home in homes[start:end]:
                self.publish(home, "meter-1", "status", "offline")
            await self.until("storm stored", lambda end=end: storm_stored(end))

        async def draining() -> bool:
            return len(self.requests_to(hub_phone)) >= 50

        await self.until("storm draining", draining)
        published = time.monotonic()
        self.publish(kitchen, "smoke-1", "telemetry", {"kind": "smoke_detector", "smoke": True})

        async def smoke_sent() -> bool:
            return sum(len(self.requests_to(p)) for p in kitchen_phones) >= len(kitchen_phones)

        await self.until("smoke alarm SMS", smoke_sent)
        times = sorted(r.received_at for p in kitchen_phones for r in self.requests_to(p))
        before = [r for r in self.requests_to(hub_phone) if r.received_at < times[0]]

        async def drained() -> bool:
            return len(self.requests_to(hub_phone)) >= storm

        await self.until("storm drained", drained)
        return Sample(times[0] - published, times[-1] - published, storm - len(before))


async def measure(broker: str, samples: int, storm: int, provider_ms: float) -> list[Sample]:
    prefix = f"bench{secrets.token_hex(3)}"
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp, FakeTwilio(delay_s=provider_ms / 1000) as fake:
        settings = Settings(
            mqtt={"url": broker, "client_id": f"gw-{prefix}"},
            database={"url": f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"},
            http={"port": port},
            twilio={
                "account_sid": fake.account_sid,
                "auth_token": fake.auth_token,
                "from": "+8675500000000",
                "api_base_url": fake.base_url,
            },
            sources=[
                {
                    "name": "native",
                    "format": "native",
                    "topics": [
                        f"{prefix}/homes/{{household}}/{{device}}/telemetry",
                        f"{prefix}/homes/{{household}}/{{device}}/status",
                    ],
                }
            ],
        )
        gateway = Gateway(settings)
        await gateway.prepare()
        stop = asyncio.Event()
        run = asyncio.create_task(gateway.run(stop, admin_token=TOKEN))
        await gateway.ingest.wait_subscribed(10)
        parts = urlsplit(broker)
        device = paho.Client(CallbackAPIVersion.VERSION2)
        device.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
        device.loop_start()
        bench = Bench(gateway, fake, device, prefix)
        results = []
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=auth) as api:
            for n in range(samples):
                result = await bench.sample(n, storm, api)
                print(
                    f"sample {n + 1}: first SMS {result.first_s * 1000:.0f} ms, "
                    f"last {result.last_s * 1000:.0f} ms, "
                    f"{result.storm_unsent} of {storm} storm SMS still unsent",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(result)
        device.loop_stop()
        stop.set()
        await run
        await gateway.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--storm", type=int, default=2000, help="made-up devices per sample")
    parser.add_argument("--provider-ms", type=float, default=100.0, help="fake Twilio's answer")
    args = parser.parse_args()
    results = asyncio.run(measure(args.broker, args.samples, args.storm, args.provider_ms))
    first = statistics.median(r.first_s for r in results) * 1000
    last = statistics.median(r.last_s for r in results) * 1000
    unsent = statistics.median(r.storm_unsent for r in results)
    print(
        f"smoke alarm publish -> first SMS at the provider during a storm of {args.storm} "
        f"(provider {args.provider_ms:.0f} ms), {len(results)} samples: median {first:.0f} ms "
        f"(max {max(r.first_s for r in results) * 1000:.0f} ms; last SMS median {last:.0f} ms); "
        f"median {unsent:.0f} storm SMS still unsent (target: {TARGET_S * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()
