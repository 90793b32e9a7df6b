"""Every payload format through the real broker into stored readings and device state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.config import Settings, SourceSettings, default_sources
from gateway.devices import FORMATS
from gateway.ingest.sources import SourceTable
from gateway.store.tables import device_state, devices, readings
from tests.integration.harness import Publisher, eventually, register, rows, running

pytestmark = pytest.mark.mqtt

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "devices"


def golden_cases(format_name: str) -> list[dict[str, Any]]:
    """The format's golden payloads that yield readings (rejections are unit-tested)."""
    cases = [
        json.loads(p.read_text("utf-8")) for p in sorted((FIXTURES / format_name).glob("*.json"))
    ]
    return [c for c in cases if c.get("readings") and not c.get("problems")]


def prefixed_settings(mqtt_url: str, database_url: str, prefix: str) -> Settings:
    return Settings(
        mqtt={"url": mqtt_url, "client_id": f"gw-{prefix}"},
        database={"url": database_url},
        sources=[
            SourceSettings(name=s.name, format=s.format, topics=[f"{prefix}/{t}" for t in s.topics])
            for s in default_sources()
        ],
    )


@pytest.mark.parametrize("format_name", sorted(FORMATS))
async def test_golden_payloads_arrive_as_readings_and_device_state(
    format_name: str, mqtt_url: str, sqlite_url: str, unique_id: str
):
    cases = golden_cases(format_name)
    assert cases, f"no golden payloads for {format_name}"
    publisher = Publisher(mqtt_url)
    try:
        async with running(prefixed_settings(mqtt_url, sqlite_url, unique_id)) as gw:
            await register(gw)
            expected: set[tuple[str, str, object]] = set()
            for case in cases:
                assert case["topic"].startswith("homes/H001/"), case["topic"]
                payload = case["payload"]
                text = payload if isinstance(payload, str) else json.dumps(payload)
                publisher.send(f"{unique_id}/{case['topic']}", text)
                device = _device_of(case["topic"])
                expected |= {(device, r["metric"], r["value"]) for r in case["readings"]}

            async def stored() -> set[tuple[str, str, object]] | None:
                found = await rows(gw, sa.select(readings))
                got = {(r["device_id"], r["metric"], _value(r)) for r in found}
                return got if expected <= got else None

            await eventually(stored, within=10)
            registered = await rows(gw, sa.select(devices))
            assert {d["source"] for d in registered} == {format_name}
            state = await rows(gw, sa.select(device_state))
            assert {(s["device_id"], s["metric"]) for s in state} >= {
                (device, metric) for device, metric, _ in expected
            }
    finally:
        publisher.close()


def _device_of(topic: str) -> str:
    found = SourceTable(default_sources()).match(topic)
    assert found is not None, topic
    return found.device_id


def _value(row: dict[str, Any]) -> object:
    # Booleans are stored as 1.0 / 0.0, and True == 1.0 in the comparison above.
    return row["value_text"] if row["value_text"] is not None else row["value_num"]
