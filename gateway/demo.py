"""`iot-gateway demo`: embedded broker, SQLite, demo households, simulated homes, the API."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

from gateway.app import Gateway
from gateway.care.households import HouseholdIn, create_household, household_exists
from gateway.config import DatabaseSettings, HttpSettings, load_settings
from gateway.ingest.embedded_broker import EmbeddedBroker, free_port, port_is_free
from simulators.homes import HomeSimulator, Incident

DEMO_DATABASE = Path("var/demo.db")
SEED_FILE = Path(__file__).resolve().parent.parent / "config" / "demo" / "households.json"
# Within the first minute: a smoke alarm in one village, a call for help in the other.
INCIDENTS = (Incident("H001", "smoke", after_s=10), Incident("H004", "sos", after_s=25))


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


async def _demo(
    gateway: Gateway, host: str, port: int, token: str, mqtt_url: str, speed: float
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await gateway.prepare()
    seeds = [HouseholdIn.model_validate(h) for h in json.loads(SEED_FILE.read_text("utf-8"))]
    async with gateway.db.begin() as conn:
        for household in seeds:
            if not await household_exists(conn, household.id):
                await create_household(conn, household, gateway.clock.now())
            gateway.directory.remember(household.id)
    simulator = HomeSimulator(
        mqtt_url, [h.id for h in seeds], speed=speed, incidents=INCIDENTS, seed=7
    )
    url = f"http://{host}:{port}"
    print(
        f"""
Care gateway demo — {len(seeds)} households in 2 villages, broker {mqtt_url}
  API docs:   {url}/docs
  Alerts:     curl -H 'Authorization: Bearer {token}' {url}/api/alerts
  Households: curl -H 'Authorization: Bearer {token}' {url}/api/households
  Token:      {token}
A smoke alarm (H001) comes at about 10 s and a call-button press (H004) at about 25 s;
their SMS texts are printed below. Ctrl-C stops everything.
""",
        file=sys.stderr,
        flush=True,
    )
    run = asyncio.create_task(gateway.run(stop, admin_token=token))
    await asyncio.to_thread(gateway.ingest.connected.wait, 10)
    simulator.start()
    try:
        await run
    finally:
        simulator.stop()
        await gateway.close()
        print("demo stopped", file=sys.stderr)
