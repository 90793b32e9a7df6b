"""benchmarks/memory.py runs, small, on each database: a real `iot-gateway run` started on an
empty and on a filled database, every device reporting once more through a private Mosquitto,
and figures that add up."""

from __future__ import annotations

import asyncio
import re

import pytest

from benchmarks import memory

pytestmark = pytest.mark.mqtt

HOUSEHOLDS = 200


async def test_the_memory_benchmark_runs_on_a_few_homes(database_url: str):
    # The benchmark drives subprocesses and waits on them: off the test's event loop.
    result = await asyncio.to_thread(memory.measure, database_url, HOUSEHOLDS, 2, tick=False)
    devices = HOUSEHOLDS * len(memory.DEVICES)
    assert result["devices"] == devices
    fill = result["fill"]
    assert fill["messages"] == 2 * devices, "two days of history, one report a device a day"
    assert fill["rule_states_saved"] == HOUSEHOLDS, "every home's activity log saved"
    empty = result["empty"]
    for case in (empty, result["restart"], result["live"]):
        assert 30 < case["rss_mb"] <= case["hwm_mb"] < 2000, case
    for case in (empty, result["restart"]):
        assert 0 < case["startup_s"] < 60, case
    assert result["live"]["msgs_per_s"] > 0
    for case in (result["restart"], result["live"]):
        expected = (case["rss_mb"] - empty["rss_mb"]) * 1024 / devices
        assert case["kb_per_device"] == pytest.approx(expected, abs=0.01)


async def test_the_memory_profile_names_the_gateways_lines(database_url: str):
    """--profile: what `Core.prepare()` keeps, by line and by the gateway's own line."""
    await memory.fill(database_url, 50, 1)
    found = await memory.profile(database_url, top=5)
    assert 0 < found["traced_mb"] <= found["traced_peak_mb"]
    assert len(found["top_lines"]) == 5
    gateway_lines = [line for line in found["top_gateway_lines"] if line["where"] != "(other)"]
    assert gateway_lines, found["top_gateway_lines"]
    # Paths inside the package, with a line: "rules/engine.py:212".
    assert all(re.fullmatch(r"[\w/]+\.py:\d+", line["where"]) for line in gateway_lines)
