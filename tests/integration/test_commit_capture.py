"""The live feed's commit capture on a real engine: a query cancelled midway (a task cancelled
at shutdown) still ends cancelled and gives its connection back to the pool."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa

from gateway.live.feed import LiveFeed
from gateway.observability import GatewayMetrics
from gateway.store.database import create_engine
from tests.integration.harness import eventually


@pytest.mark.postgres
async def test_a_query_cancelled_midway_ends_cancelled_and_returns_its_connection(
    postgres_url: str,
):
    engine = create_engine(postgres_url)
    LiveFeed(engine, GatewayMetrics())  # installs the capture's hooks on the engine
    watcher = create_engine(postgres_url)
    try:

        async def sleep_in_the_database() -> None:
            async with engine.connect() as conn:
                await conn.execute(sa.text("SELECT pg_sleep(30)"))

        async def sleeping() -> bool:
            async with watcher.connect() as conn:
                found = await conn.scalar(
                    sa.text(
                        "SELECT count(*) FROM pg_stat_activity"
                        " WHERE state = 'active' AND query = 'SELECT pg_sleep(30)'"
                        " AND datname = current_database()"
                    )
                )
            return bool(found)

        task = asyncio.create_task(sleep_in_the_database())
        await eventually(sleeping, within=10.0)
        task.cancel()
        # Cancelled, not PendingRollbackError out of the capture's rollback hook, which had
        # stopped close() before the connection went back to the pool.
        with pytest.raises(asyncio.CancelledError):
            await task
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()
        await watcher.dispose()
