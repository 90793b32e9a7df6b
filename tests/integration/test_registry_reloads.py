"""Households reloaded for registry changes on PostgreSQL (DESIGN.md §9): only for changes made
in another process, and none still running once the gateway has closed.

A reload left running by `Gateway.close` was cancelled later, with the event loop, holding a
connection of a disposed pool: the garbage collector found it in a later test, after its loop
had closed ("Event loop is closed", "non-checked-in connection").
"""

from __future__ import annotations

import asyncio

import pytest

from gateway.live.bus import PostgresBus
from gateway.live.feed import LiveFeed
from gateway.observability import GatewayMetrics
from gateway.store.database import create_engine
from tests.integration.harness import eventually

pytestmark = pytest.mark.postgres


async def test_a_registry_change_reloads_the_household_in_the_other_processes_only(
    postgres_url: str,
):
    engines = [create_engine(postgres_url) for _ in range(2)]
    feeds = [LiveFeed(engine, GatewayMetrics()) for engine in engines]
    heard: list[list[frozenset[str]]] = [[], []]
    for feed, calls in zip(feeds, heard, strict=True):
        feed.on_registry = calls.append
    tasks = [asyncio.create_task(feed.run()) for feed in feeds]
    try:
        for feed in feeds:
            assert isinstance(feed.bus, PostgresBus)
            await asyncio.wait_for(feed.bus.listening.wait(), 5)
        feeds[0].registry_changed("H001")
        # The process that made the change reloaded it already: no second reload of its own.
        assert heard[0] == []

        async def the_other_heard() -> bool:
            return heard[1] == [frozenset({"H001"})]

        await eventually(the_other_heard, within=5.0)
        await asyncio.sleep(0.2)  # its own notification is back by now, and ignored
        assert heard == [[], [frozenset({"H001"})]]
    finally:
        for feed in feeds:
            feed.stop()
        await asyncio.gather(*tasks)
        for engine in engines:
            await engine.dispose()
