"""`iot-gateway simulate`: simulated homes against any broker, into a recording, or as load."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from gateway.config import load_settings
from simulators import (
    SCENARIOS,
    BrokerUnavailable,
    LivePublisher,
    Message,
    Neighbourhood,
    run_load,
    write_labels,
    write_recording,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--households", type=int, default=10, help="number of homes (default 10)")
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="simulated seconds per real second when live (default 60; 0 = as fast as possible)",
    )
    parser.add_argument("--days", type=float, default=1.0, help="simulated days (default 1)")
    parser.add_argument(
        "--scenario",
        choices=sorted(SCENARIOS),
        help="an incident or a hard normal day in the first household; see docs/simulators.md",
    )
    parser.add_argument("--seed", type=int, default=0, help="same seed, same homes and stream")
    parser.add_argument(
        "--start",
        help="simulated start, ISO 8601 with offset (default: now, or midnight for --record)",
    )
    parser.add_argument(
        "--record", type=Path, help="write a recording (JSON lines) instead of publishing"
    )
    parser.add_argument("--labels", type=Path, help="labels file (default: RECORDING.labels.jsonl)")
    parser.add_argument("--broker", help="MQTT URL (default: the gateway's GATEWAY_MQTT_URL)")
    parser.add_argument(
        "--register",
        metavar="API_URL",
        help="register the simulated households with a gateway first (token: GATEWAY_ADMIN_TOKEN)",
    )
    parser.add_argument(
        "--load", action="store_true", help="load mode: publish at --rate for --duration"
    )
    parser.add_argument("--rate", type=float, default=1000.0, help="load mode: messages per second")
    parser.add_argument("--duration", type=float, default=10.0, help="load mode: seconds")


def run(args: argparse.Namespace) -> int:
    """Run the simulate command; returns the exit code."""
    if args.households < 1:
        print("iot-gateway: error: --households must be at least 1", file=sys.stderr)
        return 2
    settings = load_settings(args.config)
    broker = args.broker or settings.mqtt.url
    if args.load:
        return _load(args, broker)
    start = _start(args.start, recording=args.record is not None)
    # Live and faster than real time, the simulated clock runs ahead of the real one: payloads
    # then carry no time of their own, and the gateway stamps them on arrival.
    stamped = args.record is not None or args.speed == 1
    hood = Neighbourhood(
        args.households,
        seed=args.seed,
        start=start,
        days=args.days,
        scenario=args.scenario,
        timestamps=stamped,
    )
    if args.register:
        _register(args.register, settings.admin_token, hood.registrations())
    try:
        if args.record:
            return _record(args, hood)
        return _live(args, broker, hood)
    except BrokerUnavailable as exc:
        print(f"iot-gateway: error: {exc}", file=sys.stderr)
        return 1


def _start(text: str | None, *, recording: bool) -> datetime:
    if text:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            raise SystemExit(
                "iot-gateway: error: --start needs an offset, e.g. 2026-11-29T00:00:00+08:00"
            )
        return when
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) if recording else now


def _register(api_url: str, token: object, bodies: list[dict[str, object]]) -> None:
    secret = getattr(token, "get_secret_value", lambda: "")()
    if not secret:
        raise SystemExit("iot-gateway: error: --register needs GATEWAY_ADMIN_TOKEN")
    headers = {"Authorization": f"Bearer {secret}"}
    with httpx.Client(base_url=api_url, headers=headers, timeout=10) as api:
        for body in bodies:
            response = api.post("/api/households", json=body)
            if response.status_code not in (201, 409):
                raise SystemExit(
                    f"iot-gateway: error: registering {body['id']}: "
                    f"{response.status_code} {response.text[:200]}"
                )
    print(f"registered {len(bodies)} households with {api_url}", file=sys.stderr)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%  {task.fields[messages]} messages"),
        TimeElapsedColumn(),
        transient=False,
    )


def _record(args: argparse.Namespace, hood: Neighbourhood) -> int:
    labels = args.labels or args.record.with_suffix(".labels.jsonl")
    span = hood.end_ts - hood.start_ts
    with _progress() as bar:
        task = bar.add_task("recording", total=span, messages=0)
        count = 0

        def messages() -> Iterator[Message]:
            nonlocal count
            for message in hood.messages():
                count += 1
                if count % 500 == 0:
                    bar.update(task, completed=message.ts - hood.start_ts, messages=count)
                yield message

        write_recording(messages(), args.record)
        bar.update(task, completed=span, messages=count)
    write_labels(hood.incidents, labels)
    alarms = sum(1 for i in hood.incidents if i.alarm)
    print(
        f"wrote {count} messages from {args.households} households over {args.days:g} day(s) "
        f"to {args.record}; {len(hood.incidents)} labels ({alarms} incidents) to {labels}",
        file=sys.stderr,
    )
    return 0


def _live(args: argparse.Namespace, broker: str, hood: Neighbourhood) -> int:
    span = hood.end_ts - hood.start_ts
    publisher = LivePublisher(broker, speed=args.speed)
    with _progress() as bar:
        task = bar.add_task(f"publishing to {_safe(broker)}", total=span, messages=0)

        def progress(sent: int, ts: float) -> None:
            bar.update(task, completed=ts - hood.start_ts, messages=sent)

        try:
            summary = publisher.run(hood.messages(), progress=progress)
        except KeyboardInterrupt:
            publisher.stop()
            return 130
    print(summary.describe(), file=sys.stderr)
    return 0


def _safe(url: str) -> str:
    """The broker URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


def _load(args: argparse.Namespace, broker: str) -> int:
    with _progress() as bar:
        task = bar.add_task(f"load at {args.rate:g} msg/s", total=args.duration, messages=0)
        lock = threading.Lock()

        def progress(sent: int, elapsed: float) -> None:
            with lock:
                bar.update(task, completed=elapsed, messages=sent)

        try:
            summary = run_load(
                broker, args.households, args.rate, args.duration, seed=args.seed, progress=progress
            )
        except BrokerUnavailable as exc:
            print(f"iot-gateway: error: {exc}", file=sys.stderr)
            return 1
    print(summary.describe(), file=sys.stderr)
    return 0
