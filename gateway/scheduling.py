"""The periodic jobs (rules tick, rule-state save, escalation, visit reminders) and how
lateness is handled and reported.

APScheduler's defaults drop a run that starts more than a second late, silently: with a long
tick, the 5-minute save fell due while the loop was busy and was skipped every time. Here a late
run still runs (once, however late: `coalesce`), and every late or skipped run is logged and
counted, so a save can never go missing unnoticed.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
)
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger

from gateway.observability import GatewayMetrics

log = logging.getLogger(__name__)

LATE_AFTER_S = 5.0
"""A run that starts this much after its time is logged as late."""

Job = Callable[[], Awaitable[Any]]


class Schedule:
    """Interval and cron jobs on the event loop; lateness and skipped runs logged and counted."""

    def __init__(self, metrics: GatewayMetrics, *, late_after_s: float = LATE_AFTER_S) -> None:
        self.metrics = metrics
        self.late_after_s = late_after_s
        self.scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1},
        )
        self.scheduler.add_listener(self._started, EVENT_JOB_SUBMITTED)
        self.scheduler.add_listener(self._failed, EVENT_JOB_ERROR)
        self.scheduler.add_listener(self._skipped, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    def every(self, seconds: float, name: str, job: Job) -> None:
        self.scheduler.add_job(job, "interval", seconds=seconds, id=name, name=name)

    def cron(self, name: str, job: Job, *, zone: ZoneInfo, **fields: int | str) -> None:
        """A job at wall-clock times of `zone` (APScheduler cron fields: day, hour, minute...)."""
        self.scheduler.add_job(job, CronTrigger(timezone=zone, **fields), id=name, name=name)

    def run_soon(self, name: str) -> None:
        """Run job `name` now rather than at its next time (callers make sure it is not
        running: a second instance would be skipped, and counted as such)."""
        job = self.scheduler.get_job(name)
        if job is not None and self.scheduler.running:
            job.modify(next_run_time=datetime.now(UTC))

    def start(self) -> None:
        self.scheduler.start()

    def stop(self) -> None:
        self.scheduler.shutdown(wait=False)

    def _started(self, event: Any) -> None:
        # Submitted is started: the asyncio executor creates the job's task at once. Missed runs
        # are coalesced into this one, so it is as late as the first of them.
        due = min(event.scheduled_run_times)
        delay = max((datetime.now(UTC) - due).total_seconds(), 0.0)
        self.metrics.job_start_delay.labels(event.job_id).observe(delay)
        if delay > self.late_after_s:
            runs = len(event.scheduled_run_times)
            log.warning(
                "job %s started %.1f s late%s",
                event.job_id,
                delay,
                f" (one run for {runs} missed)" if runs > 1 else "",
            )

    def _failed(self, event: Any) -> None:
        self.metrics.job_failures.labels(event.job_id).inc()  # APScheduler logs the traceback

    def _skipped(self, event: Any) -> None:
        self.metrics.job_skipped.labels(event.job_id).inc()
        reason = "still running" if event.code == EVENT_JOB_MAX_INSTANCES else "missed"
        log.warning("job %s skipped a run (%s)", event.job_id, reason)
