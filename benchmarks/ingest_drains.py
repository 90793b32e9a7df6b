"""One drainer of benchmarks/ingest_ratio.py's backlog, in a process of its own: a bare paho-mqtt
subscriber or a whole gateway, one of the --processes of a drain.

The driver and its drainers speak through stdin/stdout and a small shared file:

- the drainer gets ready (a gateway migrates, registers the households, loads) and prints
  `ready`; nothing is connected to the broker yet, so the backlog waits in its session;
- on a line `go` it connects and drains; meanwhile it writes how many messages it has
  taken (bare: received; gateway: `iot_gateway_messages_total`, counted after each batch's
  commit) into its own 8-byte slot of the counts file, every POLL_S;
- on a line `stop` (or when stdin closes) it disconnects and exits; stdin closed before `go`
  (the driver gave up) ends it without connecting.

The driver times from `go` to the moment the slots add up to the backlog, so N processes are
timed as one drain, from one clock.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import mmap
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

POLL_S = 0.01
SLOT = struct.Struct("<q")


def client(client_id: str | None = None, *, clean: bool = True) -> paho.Client:
    return paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        clean_session=clean,
        protocol=paho.MQTTv311,
    )


class Counts:
    """The shared file of int64 slots, one per drainer: what each has taken so far."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("r+b")
        self._map = mmap.mmap(self._file.fileno(), 0)

    @classmethod
    def create(cls, path: Path, slots: int) -> Counts:
        path.write_bytes(bytes(SLOT.size * slots))
        return cls(path)

    def write(self, index: int, count: int) -> None:
        SLOT.pack_into(self._map, index * SLOT.size, count)

    def total(self) -> int:
        return sum(n for (n,) in SLOT.iter_unpack(self._map))

    def close(self) -> None:
        self._map.close()
        self._file.close()


def _say(line: str) -> None:
    print(line, flush=True)


def _told_to_stop() -> threading.Event:
    """Set when the driver says `stop` (or goes away)."""
    told = threading.Event()

    def listen() -> None:
        sys.stdin.readline()
        told.set()

    threading.Thread(target=listen, daemon=True).start()
    return told


def drain_bare(args: argparse.Namespace, counts: Counts) -> None:
    """Receive (and, at QoS 1, acknowledge) each message; nothing else."""
    c = client(args.client_id, clean=False)
    received = 0

    def on_message(_c: Any, _u: Any, _m: Any) -> None:
        nonlocal received
        received += 1

    c.on_message = on_message
    _say("ready")
    if not sys.stdin.readline():  # no go: the driver gave up
        return
    c.connect("127.0.0.1", args.port)
    c.loop_start()
    told = _told_to_stop()
    while not told.wait(POLL_S):
        counts.write(args.index, received)
    c.disconnect()
    c.loop_stop()


async def drain_gateway(args: argparse.Namespace, counts: Counts) -> None:
    """The gateway of the tree on PYTHONPATH: ingest, pipeline, detector, on its database."""
    from gateway.app import Gateway
    from gateway.care.households import HouseholdIn, create_household
    from gateway.config import Settings

    mqtt: dict[str, Any] = {"url": f"mqtt://127.0.0.1:{args.port}", "client_id": args.client_id}
    if args.group:
        mqtt["shared_group"] = args.group
    settings = Settings(
        mqtt=mqtt,
        database={"url": args.database},
        sources=[
            {
                "name": "native",
                "format": "native",
                "topics": [f"{args.prefix}/homes/{{household}}/{{device}}/telemetry"],
            }
        ],
    )
    gateway = Gateway(settings)
    await gateway.prepare()
    if args.index == 0:  # the others start once this one has registered the households
        now = gateway.clock.now()
        async with gateway.db.begin() as conn:
            for h in range(args.households):
                body = {"id": f"H{h:04d}", "elder": {"name": f"H{h:04d}"}}
                await create_household(conn, HouseholdIn.model_validate(body), now)
    # Before issue 9 the directory hung off the Gateway; since, off its Core.
    directory = getattr(gateway, "directory", None) or gateway.core.directory
    for h in range(args.households):
        directory.remember(f"H{h:04d}")
    _say("ready")
    if not await asyncio.to_thread(sys.stdin.readline):  # no go: the driver gave up
        await gateway.close()
        return
    with contextlib.suppress(ImportError):  # as `iot-gateway run` does, since it does
        from gateway import collector

        collector.tune()
    stop = asyncio.Event()
    run = asyncio.create_task(gateway.run(stop, admin_token=None))
    told = asyncio.create_task(asyncio.to_thread(sys.stdin.readline))
    name = "iot_gateway_messages_total"
    while not told.done():
        if run.done():
            run.result()  # a gateway that failed says why
        counts.write(args.index, int(gateway.metrics.registry.get_sample_value(name) or 0))
        await asyncio.wait({told}, timeout=POLL_S)
    stop.set()
    await run
    await gateway.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("bare", "gateway"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--counts", type=Path, required=True)
    parser.add_argument("--index", type=int, default=0, help="this drainer's slot")
    parser.add_argument("--group", help="the shared subscription's group, if shared")
    parser.add_argument("--prefix", help="the backlog's topic prefix (gateway)")
    parser.add_argument("--households", type=int, default=0, help="to register (gateway)")
    parser.add_argument("--database", help="the gateway's database URL")
    args = parser.parse_args()
    counts = Counts(args.counts)
    try:
        if args.role == "bare":
            drain_bare(args, counts)
        else:
            asyncio.run(drain_gateway(args, counts))
    finally:
        counts.close()


if __name__ == "__main__":
    main()
