"""A worker stops when its supervisor is gone, even one that died before the worker looked."""

from __future__ import annotations

import asyncio
import os

import pytest

from gateway.workers import SUPERVISOR_ENV, watch_supervisor


async def test_a_supervisor_gone_before_the_worker_looked_stops_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The supervisor named in the environment is not this process's parent any more: it died
    # while the worker was starting, and the worker was handed to another parent.
    monkeypatch.setenv(SUPERVISOR_ENV, str(os.getppid() + 100_000))
    stop = asyncio.Event()
    await asyncio.wait_for(watch_supervisor(stop), 5)
    assert stop.is_set()


async def test_a_living_supervisor_keeps_the_worker_running(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SUPERVISOR_ENV, str(os.getppid()))
    stop = asyncio.Event()
    watch = asyncio.create_task(watch_supervisor(stop))
    await asyncio.sleep(1.5)  # past its first look, a second after it
    assert not stop.is_set()
    assert not watch.done()
    stop.set()  # an orderly stop
    await asyncio.wait_for(watch, 5)
