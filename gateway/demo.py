"""`iot-gateway demo`: embedded broker, SQLite, demo households, simulated homes, the API."""

from __future__ import annotations

import asyncio
import heapq
import os
import signal
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from gateway.app import Gateway
from gateway.care.households import HouseholdIn, create_household, household_exists
from gateway.config import DatabaseSettings, HttpSettings, load_settings
from gateway.ingest.embedded_broker import EmbeddedBroker, free_port, port_is_free
from simulators import LivePublisher, Message, Neighbourhood, Role
from simulators.encoders import Encoder, Observation

DEMO_DATABASE = Path("var/demo.db")
DEMO_HOUSEHOLDS = 6
# Within the first minute (real time): a smoke alarm in one home, a call for help in another.
SMOKE_AFTER_S = 10
SOS_AFTER_S = 25
SOS_HOUSEHOLD = "SIM0004"
DEMO_VILLAGES = ("柳树村", "桃园村")


def run_demo(config: Path | None, *, speed: float, token: str) -> int:
    """Run everything in one process until Ctrl-C."""
    for leftover in DEMO_DATABASE.parent.glob(DEMO_DATABASE.name + "*"):
        leftover.unlink()  # each demo starts from a clean database
    broker: EmbeddedBroker | None = None
    mqtt_url = os.environ.get("GATEWAY_MQTT_URL")
    if not mqtt_url:
        broker = EmbeddedBroker()
        broker.start()
        mqtt_url = broker.url
    try:
        settings = load_settings(config)
        # The demo always uses its own database (it is wiped at every start) and its own
        # session name, whatever the environment says; only the broker may be chosen.
        settings = settings.model_copy(
            update={
                "mqtt": settings.mqtt.model_copy(
                    update={"url": mqtt_url, "client_id": "iot-gateway-demo"}
                ),
                "database": DatabaseSettings(url=f"sqlite+aiosqlite:///./{DEMO_DATABASE}"),
                "http": settings.http.model_copy(update={"port": _http_port(settings.http)}),
            }
        )
        asyncio.run(
            _demo(Gateway(settings), settings.http.host, settings.http.port, token, mqtt_url, speed)
        )
    finally:
        if broker is not None:
            broker.stop()
    return 0


def _http_port(http: HttpSettings) -> int:
    """The configured port (8000 by default) when it is free, else any free port."""
    if http.port and port_is_free(http.host, http.port):
        return http.port
    return free_port(http.host)


def demo_homes(start: datetime, speed: float) -> tuple[Neighbourhood, Iterator[Message]]:
    """Six simulated homes from `start`, with the smoke alarm and the SOS press of the demo."""
    hood = Neighbourhood(
        DEMO_HOUSEHOLDS,
        seed=7,
        start=start,
        days=30,
        scenario="smoke",
        incident_offset_s=SMOKE_AFTER_S * speed,
        # The simulated clock runs ahead of the real one: the gateway stamps arrival times.
        timestamps=False,
    )
    button = next(d for d in hood.devices(SOS_HOUSEHOLD) if d.role is Role.BUTTON)
    press = Encoder(button, hood.prefix, stamp=False).observe(
        hood.start_ts + SOS_AFTER_S * speed, Observation(sos=True)
    )
    return hood, heapq.merge(hood.messages(), press, key=lambda m: m.ts)


async def _demo(
    gateway: Gateway, host: str, port: int, token: str, mqtt_url: str, speed: float
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gateway.prepare()
    hood, stream = demo_homes(gateway.clock.now(), speed)
    seeds = [HouseholdIn.model_validate(h) for h in hood.registrations()]
    # A pilot covers a couple of villages: the first three homes in one, the rest in another.
    for n, household in enumerate(seeds):
        household.address.village = DEMO_VILLAGES[n * len(DEMO_VILLAGES) // len(seeds)]
    async with gateway.db.begin() as conn:
        for household in seeds:
            if not await household_exists(conn, household.id):
                await create_household(conn, household, gateway.clock.now())
            gateway.core.directory.remember(household.id)
    villages = len({h.address.village for h in seeds})
    url = f"http://{host}:{port}"
    print(
        f"""
Care gateway demo — {len(seeds)} simulated homes in {villages} villages, broker {mqtt_url}
  Dashboard:  {url}/  (sign in with the token below)
  API docs:   {url}/docs
  Alerts:     curl -H 'Authorization: Bearer {token}' {url}/api/alerts
  Households: curl -H 'Authorization: Bearer {token}' {url}/api/households
  Token:      {token}
Simulated time runs {speed:g}x faster. A smoke alarm (SIM0001) comes at about {SMOKE_AFTER_S} s
and a call-button press ({SOS_HOUSEHOLD}) at about {SOS_AFTER_S} s; the SMS and calls to their
visitor and first relative are printed below, and, while nobody acknowledges, to all relatives
after 2 minutes and then to the control room. Ctrl-C stops everything.
""",
        file=sys.stderr,
        flush=True,
    )
    run = asyncio.create_task(gateway.run(stop, admin_token=token))
    await gateway.ingest.wait_connected(10)
    publisher = LivePublisher(mqtt_url, speed=speed, client_id="care-demo-homes")
    homes = asyncio.create_task(asyncio.to_thread(publisher.run, stream))
    try:
        await run
    finally:
        publisher.stop()
        await homes
        await gateway.close()
        print("demo stopped", file=sys.stderr)
