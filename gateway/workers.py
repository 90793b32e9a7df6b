"""`iot-gateway run --workers N`: N gateway processes sharing the load (DESIGN.md §9).

Each worker is a whole gateway of its own (`iot-gateway run --worker K`): it takes messages
from a shared subscription (Mosquitto and EMQX hand a group's messages out one by one), judges
the per-message rules from the database, owns its share of the household partitions for the
rules over time, claims escalation steps and notifications, and serves the API on the same port
(SO_REUSEPORT: the kernel spreads connections). They share one PostgreSQL database; SQLite has
one writer, so there it runs one process.

The supervisor migrates the schema once, starts the workers, passes SIGINT/SIGTERM on, and
starts a worker again if it dies (its partitions meanwhile go to the others when its leases
run out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from types import FrameType

from gateway.config import Settings

log = logging.getLogger(__name__)
SUPERVISOR_ENV = "GATEWAY_SUPERVISOR_PID"
"""The supervisor's pid, in each worker's environment (see watch_supervisor)."""

DEFAULT_GROUP = "iot-gateway"
RESTART_AFTER_S = 2.0
STOP_GRACE_S = 30.0
QUICK_EXIT_S = 30.0
QUICK_EXITS = 5
"""A worker that exits this many times in a row within QUICK_EXIT_S of starting cannot run
(a database gone, a port taken): the supervisor stops them all rather than loop for ever."""


def worker_count(requested: int | None) -> int:
    """The workers to run: as asked, else one per core."""
    return requested if requested is not None else (os.cpu_count() or 1)


def why_one(settings: Settings) -> str | None:
    """Why this configuration runs a single process, if it does."""
    if not settings.database.url.startswith("postgresql"):
        return (
            "SQLite has a single writer: running one gateway process "
            "(for several, use PostgreSQL: [database] url = postgresql+asyncpg://...)"
        )
    return None


def as_worker(settings: Settings, index: int) -> Settings:
    """A worker's settings: its own MQTT client id (and so its own leases), the shared group,
    and visit reminders sent by the first worker only."""
    mqtt = settings.mqtt.model_copy(
        update={
            "client_id": f"{settings.mqtt.client_id}-w{index}",
            "shared_group": settings.mqtt.shared_group or DEFAULT_GROUP,
        }
    )
    update: dict[str, object] = {"mqtt": mqtt}
    if index > 0:
        update["care"] = settings.care.model_copy(update={"reminders": False})
    return settings.model_copy(update=update)


def supervise(argv: Sequence[str], count: int) -> int:
    """Run `count` workers (`argv` is this command's arguments) until told to stop; 1 if a
    worker keeps failing as soon as it starts."""
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    workers: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    quick_exits = 0
    try:
        for index in range(count):
            workers[index] = (_start(argv, index), time.monotonic())
        while not stopping.wait(0.5):
            for index, (process, started) in list(workers.items()):
                code = process.poll()
                if code is None:
                    continue
                quick_exits = quick_exits + 1 if time.monotonic() - started < QUICK_EXIT_S else 1
                if quick_exits >= QUICK_EXITS:
                    print(
                        f"iot-gateway: workers keep exiting as they start ({code}); stopping",
                        file=sys.stderr,
                    )
                    return 1
                log.error("worker %s exited with %s; starting it again", index, code)
                print(f"iot-gateway: worker {index} exited ({code}); restarting", file=sys.stderr)
                if stopping.wait(RESTART_AFTER_S):
                    break
                workers[index] = (_start(argv, index), time.monotonic())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for process, _ in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for process, _ in workers.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    return 0


async def watch_supervisor(stop: asyncio.Event) -> None:
    """In a worker: stop when the supervisor is gone (killed outright, it could not pass the
    stop on), rather than run on unsupervised.

    The supervisor names itself in the worker's environment: a worker still starting when the
    supervisor died would otherwise take its new parent for the supervisor and never stop."""
    named = os.environ.get(SUPERVISOR_ENV, "")
    parent = int(named) if named.isdigit() else os.getppid()
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("the supervisor is gone; stopping")
            stop.set()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1.0)


def _start(argv: Sequence[str], index: int) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gateway.cli", *argv, "--worker", str(index)]
    env = {**os.environ, SUPERVISOR_ENV: str(os.getpid())}
    return subprocess.Popen(command, env=env)  # noqa: S603 - this very command again, no shell
