"""Households reloaded for registry changes on PostgreSQL (DESIGN.md §9): only for changes made
in another process, and none still running once the gateway has closed.

A reload left running by `Gateway.close` was cancelled later, with the event loop, holding a
connection of a disposed pool: the garbage collector found it in a later test, after its loop
had closed ("Event loop is closed", "non-checked-in connection").
"""

from __future__ import annotations

import asyncio
import io
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.app import Gateway
from gateway.clock import ManualClock
from gateway.live.bus import PostgresBus
from gateway.live.feed import LiveFeed
from gateway.observability import GatewayMetrics
from gateway.rules.routine import NoWaterUse
from gateway.store.database import create_engine
from gateway.store.rule_settings import put_overrides
from tests.integration.harness import eventually, isolated_settings, register

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


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


async def test_closing_the_gateway_finishes_a_reload_and_returns_its_connection(
    postgres_url: str, unique_id: str
):
    settings = isolated_settings("mqtt://127.0.0.1:1", postgres_url, unique_id)
    gateway = Gateway(settings, clock=ManualClock(NOW), notifier=ConsoleNotifier(io.StringIO()))
    await gateway.prepare()
    try:
        await register(gateway)
        async with gateway.db.begin() as conn:
            await put_overrides(conn, "H001", {"no_water_use": {"window_h": 20}}, "other", NOW)
        # Counted by the pool's events: its checkedout() reads 0 once disposed, whatever is out.
        held = [0]
        pool = gateway.db.sync_engine.pool
        event.listen(pool, "checkout", lambda *_: held.__setitem__(0, held[0] + 1))
        event.listen(pool, "checkin", lambda *_: held.__setitem__(0, held[0] - 1))
        # As when another process's change is heard; `run` is not running, as in the API tests.
        assert gateway.live.on_registry is not None
        gateway.live.on_registry(frozenset({"H001"}))
        async with asyncio.timeout(10):
            while held[0] == 0:  # the reload is reading the household
                await asyncio.sleep(0)
    finally:
        await gateway.close()
    assert held[0] == 0, "a connection was still out when the gateway closed"
    rules = gateway.detector.engine.state("H001").rules
    assert rules is not None, "the reload did not finish"
    [no_water] = [r for r in rules.rules if isinstance(r, NoWaterUse)]
    assert no_water.config.window_h == 20
