"""The `iot-gateway` command: run, demo, simulate, record, replay, db upgrade, report,
import ledger, normalize."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from gateway import collector
from gateway.app import Gateway, StartupError
from gateway.clock import EventClock
from gateway.config import ConfigError, Settings, load_settings
from gateway.devices import DeviceMessage, Rejected, normaliser_for
from gateway.ingest.sources import SourceTable
from gateway.privacy import PersonalDataFilter
from gateway.reports.coverage import CoverageReport
from gateway.rules.catalogue import RulesConfigError, load_rules_config
from gateway.store.database import DatabaseUnusable
from gateway.workers import as_worker, supervise, watch_supervisor, why_one, worker_count

log = logging.getLogger("gateway")


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.handler(args)
        return result
    except (ConfigError, RulesConfigError) as exc:
        print(f"iot-gateway: configuration error: {exc}", file=sys.stderr)
        return 2
    except (StartupError, DatabaseUnusable) as exc:
        # One line, whatever a library appended (SQLAlchemy adds a "Background on this error"
        # link on a line of its own).
        print(f"iot-gateway: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iot-gateway",
        description="Care gateway: device traffic from elders' homes to alerts and visit records.",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML settings file (default: $GATEWAY_CONFIG or config/gateway.toml)",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the gateway service")
    run.add_argument(
        "--clock",
        choices=("system", "event"),
        default="system",
        help="time for time-driven rules: the system clock (default), or the newest reading's "
        "time (for simulators and replayed streams)",
    )
    run.add_argument(
        "--workers",
        type=_positive,
        help="gateway processes sharing the load (default: one per core; PostgreSQL only, "
        "SQLite runs one)",
    )
    run.add_argument("--worker", type=int, help=argparse.SUPPRESS)  # set by the supervisor
    run.set_defaults(handler=_run)

    demo = commands.add_parser("demo", help="run a self-contained demo (embedded broker, SQLite)")
    demo.add_argument("--speed", type=float, default=60.0, help="simulated seconds per second")
    demo.set_defaults(handler=_demo)

    simulate = commands.add_parser(
        "simulate", help="simulated homes: live against a broker, into a recording, or as load"
    )
    _simulate_arguments(simulate)
    simulate.set_defaults(handler=_simulate)

    record = commands.add_parser(
        "record", help="write live broker traffic to a recording (JSON lines)"
    )
    record.add_argument("--out", type=Path, required=True, help="recording file to write")
    record.add_argument("--broker", help="MQTT URL (default: the gateway's GATEWAY_MQTT_URL)")
    record.add_argument(
        "--topic",
        action="append",
        dest="topics",
        metavar="FILTER",
        help="MQTT filter to record (repeatable; default: the configured sources' topics)",
    )
    record.add_argument("--duration", type=float, help="stop after this many seconds")
    record.add_argument("--count", type=int, help="stop after this many messages")
    record.set_defaults(handler=_record)

    replay = commands.add_parser(
        "replay", help="run a recording through the rules on event time; print alerts opened"
    )
    replay.add_argument("recording", type=Path, help="recording file (JSON lines)")
    replay.add_argument("--rules", type=Path, help="rules file to try (default: the configured)")
    replay.add_argument(
        "--labels",
        type=Path,
        help="labels file (simulate --record writes one): its away periods are marked first",
    )
    replay.add_argument(
        "--database",
        help="database URL to keep the result in (default: a temporary SQLite file)",
    )
    replay.add_argument(
        "--workers",
        type=_positive,
        help="processes replaying households side by side (default: one per core; "
        "one with --database)",
    )
    replay.set_defaults(handler=_replay)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(required=True, metavar="ACTION")
    db_commands.add_parser("upgrade", help="apply migrations").set_defaults(handler=_db_upgrade)

    report = commands.add_parser("report", help="reports over a month")
    report_commands = report.add_subparsers(required=True, metavar="REPORT")
    coverage = report_commands.add_parser(
        "coverage", help="the monthly visit rate per area, and the elders not yet visited"
    )
    coverage.add_argument("--month", help="YYYY-MM (default: this month)")
    coverage.add_argument("--level", choices=["county", "township", "village"], default="village")
    coverage.add_argument("--out", type=Path, help="write the table to FILE.csv or FILE.xlsx")
    coverage.set_defaults(handler=_report_coverage)
    importing = commands.add_parser("import", help="import records")
    import_commands = importing.add_subparsers(required=True, metavar="WHAT")
    ledger = import_commands.add_parser(
        "ledger", help="the elders' ledger (CSV or XLSX): every row checked, all or nothing"
    )
    ledger.add_argument("file", type=Path, help="ledger file (.csv or .xlsx)")
    ledger.add_argument("--dry-run", action="store_true", help="check every row, import nothing")
    ledger.set_defaults(handler=_import_ledger)

    normalize = commands.add_parser(
        "normalize", help="print the canonical readings of one payload (JSON lines)"
    )
    normalize.add_argument("--format", required=True, dest="format_name")
    normalize.add_argument("--topic", required=True)
    normalize.add_argument("--payload", required=True, help="payload text, or - for stdin")
    normalize.set_defaults(handler=_normalize)
    return parser


def _setup_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    # On the handler, not a logger: every record written, the gateway's or a library's
    # (uvicorn's, SQLAlchemy's), has its phone and ID numbers masked on the way out.
    handler.addFilter(PersonalDataFilter())
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    # One line per HTTP request to Twilio is noise at INFO; failures are logged by the dispatcher.
    logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    token = settings.require_admin_token()
    _setup_logging(settings.log_level)
    if args.worker is None:
        count = worker_count(args.workers)
        reason = why_one(settings)
        if count > 1 and reason is not None:
            if args.workers is not None:
                print(f"iot-gateway: {reason}", file=sys.stderr, flush=True)
            count = 1
        if count > 1:
            _migrate(settings)  # once, before the workers race to do it
            print(
                f"iot-gateway: starting {count} workers on a shared subscription "
                f"({args.clock} clock); API on http://{settings.http.host}:{settings.http.port}",
                file=sys.stderr,
                flush=True,
            )
            return supervise(_without_workers(sys.argv[1:]), count)
    else:
        settings = as_worker(settings, args.worker)
    gateway = Gateway(
        settings,
        clock=EventClock() if args.clock == "event" else None,
        share_port=args.worker is not None,
    )
    who = "" if args.worker is None else f" worker {args.worker}"
    print(
        f"iot-gateway{who}: starting ({args.clock} clock); "
        f"API on http://{settings.http.host}:{settings.http.port}, "
        f"broker {settings.mqtt.display_url()}",
        file=sys.stderr,
        flush=True,
    )
    collector.tune()
    asyncio.run(_serve(gateway, token, supervised=args.worker is not None))
    return 0


def _without_workers(argv: list[str]) -> list[str]:
    """This command's arguments without --workers (each worker is one process)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _migrate(settings: Settings) -> None:
    from gateway.store.database import create_engine, upgrade

    async def migrate() -> None:
        engine = create_engine(settings.database.url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())


async def _serve(gateway: Gateway, token: str, *, supervised: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    watch = asyncio.create_task(watch_supervisor(stop)) if supervised else None
    try:
        await gateway.prepare()
        await gateway.run(stop, admin_token=token)
    finally:
        stop.set()
        if watch is not None:
            await watch
        await gateway.close()


def _db_upgrade(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    _migrate(settings)
    print(f"database schema is up to date ({settings.database.url.split('://')[0]})")
    return 0


def _report_coverage(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo

    from rich.console import Console
    from sqlalchemy.exc import SQLAlchemyError

    from gateway.reports.coverage import month_of
    from gateway.reports.coverage_files import coverage_file, coverage_table, unvisited_table
    from gateway.reports.response import Month
    from gateway.store.coverage import coverage_report
    from gateway.store.database import create_engine

    settings = load_settings(args.config)
    zone = ZoneInfo(settings.timezone)
    suffix = args.out.suffix.lower() if args.out else None
    if suffix not in (None, ".csv", ".xlsx"):
        return _fail("--out: a file ending in .csv or .xlsx")
    current = month_of(datetime.now(UTC), zone)
    try:
        month = Month.parse(args.month) if args.month else current
    except ValueError as exc:
        return _fail(f"--month: {exc}")
    if (month.year, month.month) > (current.year, current.month):
        return _fail("--month: a month not in the future")

    async def read() -> CoverageReport:
        engine = create_engine(settings.database.url)
        try:
            async with engine.connect() as conn:
                return await coverage_report(conn, month, zone, args.level)
        finally:
            await engine.dispose()

    try:
        result = asyncio.run(read())
    except (SQLAlchemyError, OSError) as exc:
        where = settings.database.url.split("://")[0]
        return _fail(f"cannot read the database ({where}): {str(exc).splitlines()[0]}")
    console = Console(highlight=False)
    console.print(coverage_table(result))
    if result.not_visited:
        console.print(unvisited_table(result))
    if args.out is not None:
        args.out.write_bytes(coverage_file(result, "csv" if suffix == ".csv" else "xlsx"))
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _import_ledger(args: argparse.Namespace) -> int:
    from rich.console import Console

    from gateway.ledger_command import run_import

    settings = load_settings(args.config)
    return run_import(settings, args.file, dry_run=args.dry_run, console=Console())


def _normalize(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    try:
        normalise = normaliser_for(args.format_name)
    except KeyError as exc:
        return _fail(str(exc.args[0]))
    match = SourceTable(settings.sources).for_format(args.format_name).match(args.topic)
    if match is None:
        return _fail(f"topic {args.topic!r} matches no {args.format_name} source template")
    payload = sys.stdin.buffer.read() if args.payload == "-" else os.fsencode(args.payload)
    message = DeviceMessage(
        household_id=match.household_id,
        device_id=match.device_id,
        subtopic=match.subtopic,
        payload=payload,
        received_at=datetime.now(UTC),
        zone=match.zone,
    )
    try:
        result = normalise(message)
    except Rejected as exc:
        return _fail(f"{exc.code}: {exc.reason}")
    for r in result.readings:
        print(
            json.dumps(
                {
                    "household_id": r.household_id,
                    "device_id": r.device_id,
                    "kind": r.kind.value if r.kind else None,
                    "metric": r.metric.value,
                    "value": r.value,
                    "unit": r.unit,
                    "ts": r.ts.isoformat(),
                },
                ensure_ascii=False,
            )
        )
    if result.problems:
        return _fail("invalid_value: " + "; ".join(result.problems))
    return 0


def _record(args: argparse.Namespace) -> int:
    from gateway.recorder import RecorderError, record

    settings = load_settings(args.config)
    topics = args.topics or SourceTable(settings.sources).subscriptions()
    try:
        count = record(
            args.broker or settings.mqtt.url,
            topics,
            args.out,
            duration_s=args.duration,
            count=args.count,
            ca_file=settings.mqtt.ca_file,
        )
    except RecorderError as exc:
        return _fail(str(exc))
    print(f"recorded {count} messages to {args.out}", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    from gateway.replay import RecordingError, replay_file

    overrides: dict[str, object] = {}
    if args.rules is not None:
        overrides["rules_file"] = args.rules
    if args.database:
        overrides["database"] = {"url": args.database}
    settings = load_settings(args.config, **overrides)
    load_rules_config(settings.rules_file)  # a bad rules file: one line, exit 2
    _setup_logging("WARNING")
    # The households a replay registers have no contacts on purpose: not worth a warning each.
    logging.getLogger("gateway.alerts.book").setLevel(logging.ERROR)
    collector.tune()
    try:
        report = replay_file(
            settings,
            args.recording,
            temporary=not args.database,
            out=sys.stdout,
            labels=args.labels,
            workers=worker_count(args.workers),
        )
    except RecordingError as exc:
        return _fail(str(exc))
    print(report.summary(), file=sys.stderr)
    return 0


def _fail(message: str) -> int:
    print(f"iot-gateway: error: {message}", file=sys.stderr)
    return 1


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    from gateway.simulate import add_arguments

    add_arguments(parser)


def _simulate(args: argparse.Namespace) -> int:
    from gateway.simulate import run

    try:
        return run(args)
    except OSError as exc:  # e.g. a recording that cannot be written
        return _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    _setup_logging("WARNING")
    return run_demo(args.config, speed=args.speed, token=secrets.token_urlsafe(16))


if __name__ == "__main__":
    raise SystemExit(main())
