"""How long the alert book takes to open many alerts at once: a power cut in which --alerts
homes each report a device offline, found by one rules tick and opened in one
`AlertBook.apply` (each alert frozen onto its escalation, its first SMS queued), committed.

Every home has a visitor and a relative on file; the escalation policies are the built-in
ones (device_offline is medium: one SMS to the visitor). Each measurement runs in a process
of its own on a fresh SQLite file (or a fresh PostgreSQL database with --database-url); with
--compare-tree the same is run from another checkout (e.g. `git archive` of an earlier
commit) too, alternately.

    python benchmarks/alert_open.py --alerts 2000 --rounds 3 --compare-tree /tmp/before
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by the tests, not run
from databases import create_database, drop_database  # benchmarks/, this folder
from trees import alternately, trees

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)  # noon in Shanghai: no quiet hours


def home(n: int) -> dict[str, Any]:
    return {
        "id": f"H{n:05d}",
        "elder": {"name": f"老人{n}", "phone": f"+86137{n:08d}"},
        "visitors": [{"name": f"走访人{n}", "phone": f"+86139{n:08d}"}],
        "relatives": [{"name": f"亲属{n}", "phone": f"+86138{n:08d}", "relation": "son"}],
    }


def findings(alerts: int) -> list[Any]:
    from gateway.models import Finding, FindingAction, Severity

    return [
        Finding(
            rule_id="device_offline",
            household_id=f"H{n:05d}",
            device_id="plug-1",
            severity=Severity.MEDIUM,
            action=FindingAction.OPEN,
            ts=NOW,
            summary="device went offline",
        )
        for n in range(alerts)
    ]


async def one(url: str, alerts: int) -> dict[str, float]:
    """Open `alerts` alerts in one apply on the database at `url` (migrated here)."""
    from zoneinfo import ZoneInfo

    from gateway.alerts.book import AlertBook
    from gateway.alerts.escalation import Escalator
    from gateway.care.households import HouseholdIn, create_household
    from gateway.clock import ManualClock
    from gateway.config import EscalationSettings
    from gateway.observability import GatewayMetrics
    from gateway.store.database import create_engine, upgrade

    engine = create_engine(url)
    try:
        await upgrade(engine)
        async with engine.begin() as conn:
            for n in range(alerts):
                await create_household(conn, HouseholdIn.model_validate(home(n)), NOW)
        clock, zone = ManualClock(NOW), ZoneInfo("Asia/Shanghai")
        escalator = Escalator(
            engine,
            clock,
            EscalationSettings(),
            GatewayMetrics(),
            language="zh",
            default_zone=zone,
            public_url=None,
            submit=lambda ids: None,
        )
        book = AlertBook(engine, clock, "zh", zone, escalator=escalator)
        work = findings(alerts)
        began = time.perf_counter()
        async with engine.begin() as conn:
            applied = await book.apply(conn, work)
        seconds = time.perf_counter() - began
    finally:
        await engine.dispose()
    return {
        "alerts": len(applied.opened),
        "notifications": len(applied.notification_ids),
        "seconds": seconds,
        "ms_per_alert": 1000 * seconds / alerts,
    }


def run_one(args: argparse.Namespace) -> None:
    async def main() -> dict[str, float]:
        if args.database_url:
            url = await create_database(args.database_url)
            try:
                return await one(url, args.alerts)
            finally:
                await drop_database(url)
        with tempfile.TemporaryDirectory() as folder:
            return await one(f"sqlite+aiosqlite:///{Path(folder) / 'gateway.db'}", args.alerts)

    print(json.dumps(asyncio.run(main())))


def measure(args: argparse.Namespace, tree: Path | None) -> dict[str, float]:
    env = dict(os.environ)
    command = [sys.executable, str(Path(__file__).resolve()), "--one", "--alerts"]
    command += [str(args.alerts)]
    if args.database_url:
        command += ["--database-url", args.database_url]
    if tree is not None:
        env["PYTHONPATH"] = str(tree)  # ahead of this tree's editable install
    out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000, help="homes, one alert each")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database-url", help="a PostgreSQL server to make a database on")
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--out", type=Path, help="write the result here as JSON too")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args)
        return
    load = os.getloadavg()[0]
    runs = alternately(trees(args.compare_tree), args.rounds, lambda tree: measure(args, tree))
    medians = {name: statistics.median(r["seconds"] for r in rs) for name, rs in runs.items()}
    result: dict[str, Any] = {
        "alerts": args.alerts,
        "database": "postgresql" if args.database_url else "sqlite",
        "rounds": args.rounds,
        "load_average_at_start": load,
        "seconds": {
            name: {
                "runs": [round(r["seconds"], 3) for r in rs],
                "median": round(medians[name], 3),
                "ms_per_alert": round(1000 * medians[name] / args.alerts, 3),
                "notifications": rs[0]["notifications"],
            }
            for name, rs in runs.items()
        },
    }
    if args.compare_tree:
        before = medians[f"tree {args.compare_tree}"]
        result["after_over_before"] = round(medians["this tree"] / before, 4)
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
