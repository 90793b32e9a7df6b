"""Periodic jobs: a late run still runs and says so; a skipped run is counted."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC
from zoneinfo import ZoneInfo

import pytest

from gateway.observability import GatewayMetrics
from gateway.scheduling import Schedule


def sample(metrics: GatewayMetrics, name: str, job: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, {"job": job, **labels})
    return value or 0.0


async def test_a_run_due_while_the_loop_is_busy_still_runs_and_is_reported_late(
    caplog: pytest.LogCaptureFixture,
):
    metrics = GatewayMetrics()
    schedule = Schedule(metrics, late_after_s=0.5)
    runs: list[float] = []

    async def save() -> None:
        runs.append(time.monotonic())

    schedule.every(2.0, "rule_state_save", save)
    schedule.start()
    await asyncio.sleep(0.05)  # the scheduler sets its first run times on the loop
    try:
        # A long synchronous tick: the save falls due 2 s in and is 1.2 s late when the loop is
        # free again, beyond APScheduler's default grace of 1 s, which would drop the run.
        blocked_until = time.monotonic() + 3.2
        time.sleep(3.2)
        with caplog.at_level(logging.WARNING, logger="gateway.scheduling"):
            await asyncio.sleep(0.2)
    finally:
        schedule.stop()
    assert any(t >= blocked_until for t in runs)
    delays = "iot_gateway_job_start_delay_seconds"
    runs_on_time = sample(metrics, f"{delays}_bucket", "rule_state_save", le="1.0")
    assert sample(metrics, f"{delays}_count", "rule_state_save") - runs_on_time == 1
    assert "job rule_state_save started" in caplog.text
    assert sample(metrics, "iot_gateway_job_runs_skipped_total", "rule_state_save") == 0


async def test_a_run_that_falls_due_while_the_last_one_runs_is_counted_as_skipped(
    caplog: pytest.LogCaptureFixture,
):
    metrics = GatewayMetrics()
    schedule = Schedule(metrics)

    async def slow_tick() -> None:
        await asyncio.sleep(0.7)

    schedule.every(0.2, "rules_tick", slow_tick)
    with caplog.at_level(logging.WARNING, logger="gateway.scheduling"):
        schedule.start()
        try:
            await asyncio.sleep(1.0)
        finally:
            schedule.stop()
    assert sample(metrics, "iot_gateway_job_runs_skipped_total", "rules_tick") >= 1
    assert "job rules_tick skipped a run (still running)" in caplog.text


async def test_a_failing_job_is_counted():
    metrics = GatewayMetrics()
    schedule = Schedule(metrics)

    async def broken() -> None:
        raise RuntimeError("bug")

    schedule.every(0.1, "rules_tick", broken)
    schedule.start()
    try:
        await asyncio.sleep(0.35)
    finally:
        schedule.stop()
    assert sample(metrics, "iot_gateway_job_failures_total", "rules_tick") >= 1


async def test_a_cron_job_runs_at_wall_clock_times_of_the_gateway_zone():
    schedule = Schedule(GatewayMetrics())

    async def remind() -> None:
        pass

    schedule.cron("visit_reminders", remind, zone=ZoneInfo("Asia/Kathmandu"), minute=30)
    schedule.start()
    try:
        await asyncio.sleep(0.05)
        job = schedule.scheduler.get_job("visit_reminders")
        assert job is not None
        # Kathmandu is UTC+05:45: its hh:30 is hh:45 in UTC, which only its zone explains.
        assert job.next_run_time.astimezone(ZoneInfo("Asia/Kathmandu")).minute == 30
        assert job.next_run_time.astimezone(UTC).minute == 45
    finally:
        schedule.stop()
