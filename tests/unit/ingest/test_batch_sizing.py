"""Ordinary batches are sized to be stored in about ORDINARY_BATCH_S: an alarm waits no longer."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from gateway.clock import ManualClock
from gateway.config import MqttSettings
from gateway.ingest.lanes import Lane, Lanes
from gateway.ingest.mqtt import MIN_BATCH, ORDINARY_BATCH_S, InboundMessage, MqttIngest

AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def ingest_with(count: int) -> MqttIngest:
    """An ingest that never connects, its buffer holding `count` ordinary messages."""
    ingest = MqttIngest(MqttSettings(url="mqtt://127.0.0.1:1"), [], ManualClock(AT))
    ingest.lanes = Lanes(count, None)
    for n in range(count):
        ingest.lanes.put(InboundMessage("homes/H1/p/telemetry", b"{}", 1, n, False, AT))
    return ingest


async def sizes(ingest: MqttIngest, per_message_s: float, batches: int) -> list[int]:
    out = []
    async for lane, batch in ingest.lane_batches(max_batch=500):
        assert lane is Lane.ORDINARY
        out.append(len(batch))
        time.sleep(per_message_s * len(batch))  # storing them
        if len(out) == batches:
            ingest.stop_receiving()
    return out


async def test_a_slow_store_gets_smaller_batches():
    got = await sizes(ingest_with(3000), per_message_s=0.0005, batches=3)
    assert got[0] == 500
    fits = ORDINARY_BATCH_S / 0.0005  # 100; fewer when a busy machine wakes late from sleep
    assert all(MIN_BATCH <= n <= fits + 5 for n in got[1:]), got


async def test_a_fast_store_keeps_the_largest_and_a_very_slow_one_the_smallest():
    assert await sizes(ingest_with(2000), per_message_s=0.00002, batches=3) == [500] * 3
    assert await sizes(ingest_with(2000), per_message_s=0.002, batches=3) == [500] + [MIN_BATCH] * 2
