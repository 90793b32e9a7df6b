"""`iot-gateway import ledger FILE`: the ledger into the database, or a report of every bad row."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.care.audit import Actor
from gateway.care.ledger import LedgerUnreadable, SheetKind, sheet_kind
from gateway.care.ledger_store import ImportOutcome, import_ledger
from gateway.config import Settings
from gateway.store.database import create_engine, upgrade

CLI_ACTOR = Actor("cli", "admin")
"""Who the audit log says imported: whoever can run the command holds the database."""


def run_import(settings: Settings, path: Path, *, dry_run: bool, console: Console) -> int:
    """Import `path`; print the outcome or the bad rows. Exit status: 0 imported, 1 refused."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        console.print(
            f"iot-gateway: error: cannot read {path}: {exc.strerror or exc}", markup=False
        )
        return 1
    media = "text/csv" if path.suffix.lower() == ".csv" else ""
    try:
        outcome = asyncio.run(_import(settings, data, sheet_kind(media, data), dry_run))
    except LedgerUnreadable as exc:
        console.print(f"iot-gateway: error: {path}: {exc}", markup=False)
        return 1
    if outcome.errors:
        console.print(_error_table(outcome))
        rows = len({e.row for e in outcome.errors})
        console.print(f"{rows} rows have errors: nothing was imported")
        return 1
    verb = "would import" if dry_run else "imported"
    console.print(f"{verb} {outcome.created} new households, updated {outcome.replaced}")
    return 0


async def _import(settings: Settings, data: bytes, kind: SheetKind, dry_run: bool) -> ImportOutcome:
    engine = create_engine(settings.database.url)
    try:
        await upgrade(engine)
        now = datetime.now(UTC)
        return await import_ledger(
            engine,
            data,
            kind,
            actor=CLI_ACTOR,
            township=None,
            now=now,
            today=now.astimezone(ZoneInfo(settings.timezone)).date(),
            dry_run=dry_run,
        )
    finally:
        await engine.dispose()


def _error_table(outcome: ImportOutcome) -> Table:
    table = Table(title="Rows not imported")
    table.add_column("row", justify="right")
    table.add_column("column")
    table.add_column("problem")
    for e in outcome.errors:
        # Text, not markup: a header may hold brackets rich would take for style tags.
        table.add_row(str(e.row), Text(e.column), Text(e.msg))
    return table
