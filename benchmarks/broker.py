"""A private Mosquitto for a benchmark: its own port, the shipped queue limits, no outside input."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_broker(
    folder: Path,
    max_queued: int = 1_000_000,
    max_inflight: int = 100,
    *,
    queue_qos0: bool = False,
) -> tuple[subprocess.Popen[bytes], int]:
    """Start mosquitto with its config in `folder`; the process and its port. `max_inflight`:
    the window of unacknowledged messages per client (config/mosquitto has 20,000; the ingest
    benchmarks keep the 100 they were first measured with). `queue_qos0`: offline persistent
    sessions keep QoS 0 messages too (Mosquitto drops them by default)."""
    port = free_port()
    config = folder / "mosquitto.conf"
    user = os.environ.get("USER") or "root"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {user}\n"
        # As config/mosquitto/mosquitto.conf: a persistent session keeps its backlog.
        f"max_queued_messages {max_queued}\nmax_inflight_messages {max_inflight}\n"
        f"queue_qos0_messages {'true' if queue_qos0 else 'false'}\n"
    )
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    # Our own broker binary and config file: no outside input.
    process = subprocess.Popen([mosquitto, "-c", str(config)], stderr=subprocess.DEVNULL)  # noqa: S603
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, port
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("mosquitto did not start")
