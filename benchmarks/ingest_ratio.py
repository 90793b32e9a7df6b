"""How fast the gateway drains a backlog, as a ratio to a bare paho-mqtt subscriber draining the
same backlog from the same broker in the same run.

A private mosquitto (the shipped configuration's queue limits) holds a persistent session's
backlog: --households homes × --per-household native readings each (a power meter, stamped a
minute apart, ~100 bytes), published at --qos (1 by default; a QoS 0 backlog reaches the QoS 1
subscription at QoS 0: no PUBACK). Each round drains the same backlog with:

- `bare`: paho-mqtt clients that acknowledge each message and do nothing else;
- `gateway`: `iot-gateway`'s ingest from this tree, on a fresh database (SQLite in a temporary
  folder, or a database made for the drain on the PostgreSQL server --database-url names, and
  dropped after), timed until every message is committed (and, at QoS 1, acknowledged);
- `gateway@TREE` with --compare-tree: the same from another checkout (e.g. a worktree of an
  earlier commit), run with PYTHONPATH pointing at it.

--processes N (PostgreSQL) makes each drain N processes on one shared subscription
(`$share/<group>/<topic>`), each with its own client id and persistent session, bare and
gateway alike. Mosquitto 2.0 hands a shared subscription's messages to its members in turn
whether they are connected or not, and queues them for an offline member's persistent session:
so the sessions are made first, the backlog is published while all of them are offline
(N × total/N), and the N processes connect together. Each drainer is a process of its own
(benchmarks/ingest_drains.py), made ready first (a gateway migrates and registers the
households), then told to go; a drain is timed from `go` until the drainers' counts add up
to the backlog. The gateway's stored readings are counted afterwards, as a check.

The rounds alternate; medians are reported.

    python benchmarks/ingest_ratio.py --rounds 3 --compare-tree /tmp/before
    python benchmarks/ingest_ratio.py --processes 2 --qos 0 \\
        --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by the tests, not run
from broker import start_broker  # benchmarks/, the script's own folder
from databases import create_database, drop_database
from ingest_drains import POLL_S, Counts, client

START_TS = int(time.time()) - 10 * 3600  # stamped within the last hours, a minute apart
DRAINS = Path(__file__).resolve().parent / "ingest_drains.py"
STALL_S = 60.0
"""A drain that takes no message for this long has lost some: it fails."""


@dataclass(frozen=True)
class Backlog:
    households: int
    per_household: int
    qos: int
    processes: int
    database_url: str | None  # a PostgreSQL server; None: SQLite


def subscribe_session(port: int, client_id: str, topic: str) -> None:
    """Create a persistent session (subscription at QoS 1), then leave."""
    c = client(client_id, clean=False)
    done = threading.Event()
    c.on_subscribe = lambda *args: done.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.subscribe(topic, qos=1)
    done.wait(10)
    c.disconnect()
    c.loop_stop()


def publish_backlog(port: int, prefix: str, backlog: Backlog) -> int:
    c = client()
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    c.connect("127.0.0.1", port)
    c.loop_start()
    infos = []
    for n in range(backlog.per_household):
        for h in range(backlog.households):
            payload = json.dumps(
                {"kind": "power_meter", "ts": START_TS + 60 * n, "power_w": 100.0 + h + n % 7}
            )
            topic = f"{prefix}/homes/H{h:04d}/power-1/telemetry"
            infos.append(c.publish(topic, payload, qos=backlog.qos))
    # The broker handles a connection's packets in order: once this QoS 1 message is
    # acknowledged, every QoS 0 message before it is in the sessions' queues.
    infos.append(c.publish(f"{prefix}/end", b"", qos=1))
    for info in infos:
        info.wait_for_publish(60)
    c.disconnect()
    c.loop_stop()
    return len(infos) - 1


# --- one drain: N drainer processes, timed together ---------------------------------------------


def _start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    with log.open("a") as errors:
        # This script's own drainer, our arguments: no shell, no outside input.
        pipe = subprocess.PIPE
        return subprocess.Popen(  # noqa: S603
            command, env=env, stdin=pipe, stdout=pipe, stderr=errors, text=True
        )


def _wait_ready(process: subprocess.Popen[str], log: Path) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        if line.strip() == "ready":
            return
    process.wait()
    raise RuntimeError(f"a drainer exited ({process.returncode}): {log.read_text()[-3000:]}")


def _tell(processes: list[subprocess.Popen[str]], word: str) -> None:
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(word + "\n")
        process.stdin.flush()


def _end(process: subprocess.Popen[str]) -> None:
    """Close its stdin (a drainer's cue to stop) and wait for it; kill it if it hangs."""
    assert process.stdin is not None
    with contextlib.suppress(OSError):
        process.stdin.close()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def run_drain(commands: list[list[str]], env: dict[str, str], total: int, folder: Path) -> float:
    """Start the drainers (the first ready before the others start), say go, and time until
    their counts add up to `total`; seconds."""
    counts = Counts.create(folder / "counts", len(commands))
    log = folder / "drainers.log"
    processes = [_start(commands[0], env, log)]
    try:
        _wait_ready(processes[0], log)
        processes += [_start(command, env, log) for command in commands[1:]]
        for process in processes[1:]:
            _wait_ready(process, log)
        began = moved = time.perf_counter()
        _tell(processes, "go")
        taken = 0
        while taken < total:
            if any(p.poll() is not None for p in processes):
                raise RuntimeError(f"a drainer exited mid-drain: {log.read_text()[-3000:]}")
            time.sleep(POLL_S / 2)
            now, before, taken = time.perf_counter(), taken, counts.total()
            if taken != before:
                moved = now
            elif now - moved > STALL_S:  # e.g. messages the broker did not queue
                raise RuntimeError(f"the drain stalled at {taken} of {total} messages")
        elapsed = moved - began  # when the last messages were counted
        _tell(processes, "stop")
    finally:
        for process in processes:
            _end(process)
        counts.close()
    return elapsed


async def _count_postgresql(url: str) -> int:
    import asyncpg
    from sqlalchemy.engine import make_url

    u = make_url(url)
    conn = await asyncpg.connect(
        host=u.host, port=u.port, user=u.username, password=u.password, database=u.database
    )
    try:
        return int(await conn.fetchval("SELECT count(*) FROM readings"))
    finally:
        await conn.close()


def stored_readings(url: str) -> int:
    if url.startswith("sqlite"):
        with contextlib.closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
            return int(conn.execute("SELECT count(*) FROM readings").fetchone()[0])
    return asyncio.run(_count_postgresql(url))


def measure(role: str, port: int, backlog: Backlog, tree: Path | None) -> float:
    """One drain of a fresh backlog by `role`; messages a second."""
    prefix = f"bench{secrets.token_hex(3)}"
    base_id = f"drain-{secrets.token_hex(4)}"
    topic = f"{prefix}/homes/+/+/telemetry"
    group = f"bench{secrets.token_hex(3)}" if backlog.processes > 1 else None
    ids = [f"{base_id}-w{k}" for k in range(backlog.processes)] if group else [base_id]
    for client_id in ids:
        subscribe_session(port, client_id, f"$share/{group}/{topic}" if group else topic)
    total = publish_backlog(port, prefix, backlog)
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    with tempfile.TemporaryDirectory() as folder:
        database = None
        if role == "gateway":
            database = f"sqlite+aiosqlite:///{Path(folder) / 'gateway.db'}"
            if backlog.database_url:
                database = asyncio.run(create_database(backlog.database_url))
        commands = []
        for index, client_id in enumerate(ids):
            command = [sys.executable, str(DRAINS), role, "--port", str(port)]
            command += ["--client-id", client_id, "--index", str(index)]
            command += ["--counts", str(Path(folder) / "counts")]
            if group:
                command += ["--group", group]
            if database:
                command += ["--prefix", prefix, "--households", str(backlog.households)]
                command += ["--database", database]
            commands.append(command)
        try:
            seconds = run_drain(commands, env, total, Path(folder))
            if database is not None and (stored := stored_readings(database)) != total:
                raise RuntimeError(f"the gateway stored {stored} readings of {total}")
        finally:
            if database is not None and backlog.database_url:
                asyncio.run(drop_database(database))
    return total / seconds


def run(backlog: Backlog, rounds: int, compare_tree: Path | None = None) -> dict[str, Any]:
    """Drain `rounds` backlogs with each drainer, alternately; the summary."""
    load = os.getloadavg()
    runs: dict[str, list[float]] = {"bare": [], "gateway": []}
    trees: dict[str, Path | None] = {"gateway": None}
    if compare_tree is not None:
        runs[f"gateway@{compare_tree}"] = []
        trees[f"gateway@{compare_tree}"] = compare_tree
    with tempfile.TemporaryDirectory() as folder:
        broker, port = start_broker(Path(folder), queue_qos0=backlog.qos == 0)
        try:
            for _ in range(rounds):
                for name in runs:
                    role = "bare" if name == "bare" else "gateway"
                    rate = measure(role, port, backlog, trees.get(name))
                    runs[name].append(rate)
                    print(f"{name}: {rate:,.0f} msg/s", file=sys.stderr, flush=True)
        finally:
            broker.terminate()
            broker.wait()
    bare = statistics.median(runs["bare"])
    summary: dict[str, Any] = {
        "messages": backlog.households * backlog.per_household,
        "rounds": rounds,
        "processes": backlog.processes,
        "qos": backlog.qos,
        "database": "postgresql" if backlog.database_url else "sqlite",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in load],
    }
    for name, rates in runs.items():
        median = statistics.median(rates)
        summary[name] = {
            "msgs_per_s": [round(r) for r in rates],
            "median_msgs_per_s": round(median),
            "ratio_to_bare": round(median / bare, 3),
        }
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=100)
    parser.add_argument("--per-household", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--qos", type=int, choices=(0, 1), default=1, help="of the backlog")
    parser.add_argument("--processes", type=int, default=1, help="per drain (PostgreSQL)")
    parser.add_argument("--database-url", help="a PostgreSQL server for the drains' databases")
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--out", type=Path, help="write the result here as JSON too")
    args = parser.parse_args()
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if args.processes > 1 and not args.database_url:
        parser.error("several processes need PostgreSQL (--database-url): SQLite has one writer")
    backlog = Backlog(
        args.households, args.per_household, args.qos, args.processes, args.database_url
    )
    text = json.dumps(run(backlog, args.rounds, args.compare_tree), indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
