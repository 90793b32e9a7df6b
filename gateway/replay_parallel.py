"""Replay a recording's households in parallel processes, one part of them each, and merge.

Households are independent in a replay: every rule, alert, rate and device quota belongs to
one household, and time follows each household's own readings. So the households are dealt
out to `workers` processes (by a hash of the household id: every process can tell its own
from the topic alone, and the labels' away periods go with their household); each process
reads the whole recording, keeps its households' messages and replays them into a throw-away
database of its own, exactly as a single replay would, in the same batches (cut every 2,000
messages of the whole recording, the clock at the last of them): an alert is printed after
its batch, with what repeats in the batch added to its evidence, so the batches must match.

Time is the one thing the parts share. A single replay ticks every household at every minute
any household's readings pass; a part's readings may pause where the others' go on, so a part
ticks every minute of a pause, however long (a single replay ticks once after a day in which
no household sent anything: the one case where parts and one process differ). When every
part has replayed its messages, the parts tell the parent how far they have ticked, and each
ticks on to the furthest before it hands back its alerts. The parent merges them in the
order they were opened (alerts opened at the same instant: by household) and adds up the
summaries. Needs `fork` (Linux): elsewhere, or with one worker, the replay runs in this
process.
"""

from __future__ import annotations

import asyncio
import io
import json
import multiprocessing
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TextIO, cast

from gateway.clock import ManualClock
from gateway.config import Settings
from gateway.ingest.sources import SourceTable
from gateway.replay import (
    RecordingError,
    Replay,
    ReplayReport,
    checked,
    mark_away,
    throwaway_settings,
)
from simulators import Incident, Message
from simulators.recording import read_recording


def can_fork() -> bool:
    """Whether parts can be replayed in forked processes here."""
    return "fork" in multiprocessing.get_all_start_methods()


def part_of(household_id: str, parts: int) -> int:
    """The part a household's messages are replayed in (messages of no household: part 0)."""
    return zlib.crc32(household_id.encode("utf-8")) % parts if household_id else 0


def keeper(sources: SourceTable, part: int, parts: int) -> Callable[[Message], bool]:
    """Whether a message's household belongs to `part`."""
    owner: dict[str, int] = {}  # per topic: a recording has few topics and many messages

    def keep(m: Message) -> bool:
        found = owner.get(m.topic)
        if found is None:
            match = sources.match(m.topic)
            found = owner[m.topic] = part_of(match.household_id if match else "", parts)
        return found == part

    return keep


def replay_in_parts(
    settings: Settings, path: Path, out: TextIO, labels: list[Incident], parts: int
) -> ReplayReport:
    """Replay `path` in `parts` processes (throw-away databases); print the merged alerts."""
    began = time.perf_counter()
    first = next(checked(read_recording(path)), None)
    start = first.ts if first is not None else None
    context = multiprocessing.get_context("fork")
    links: list[Connection] = []
    processes = []
    try:
        for part in range(parts):
            mine, theirs = context.Pipe()
            job = _Part(settings, path, labels, part, parts, start)
            process = context.Process(
                target=_replay_part, args=(job, theirs), name=f"replay-part-{part}"
            )
            process.start()
            theirs.close()
            links.append(mine)
            processes.append(process)
        ticked = [cast(datetime | None, _receive(link, "ticked")) for link in links]
        furthest = max((t for t in ticked if t is not None), default=None)
        for link in links:
            link.send(furthest)
        results = [cast(tuple[ReplayReport, str], _receive(link, "done")) for link in links]
        for process in processes:
            process.join()
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
                process.join()
    report = merge_reports([r for r, _ in results])
    for line in merge_alert_lines([lines for _, lines in results]):
        print(line, file=out, flush=True)
    report.wall_s = time.perf_counter() - began
    return report


def merge_alert_lines(parts: list[str]) -> list[str]:
    """The parts' alert lines in the order the alerts were opened; at the same instant, by
    household (one household's alerts keep their order: they come from one part)."""
    lines = [line for text in parts for line in text.splitlines() if line.strip()]

    def key(line: str) -> tuple[datetime, str]:
        alert = json.loads(line)
        return datetime.fromisoformat(alert["opened_at"]), alert["household_id"]

    return sorted(lines, key=key)


def merge_reports(reports: list[ReplayReport]) -> ReplayReport:
    """One summary for the parts: counts added up, the event span from first to last."""
    merged = ReplayReport()
    for r in reports:
        merged.messages += r.messages
        merged.readings += r.readings
        merged.households_registered += r.households_registered
        merged.notifications_pending += r.notifications_pending
        merged.dead_letters.update(r.dead_letters)
        merged.alerts.update(r.alerts)
        merged.away_periods += r.away_periods
        if r.first_ts is not None:
            merged.first_ts = min(r.first_ts, merged.first_ts or r.first_ts)
        if r.last_ts is not None:
            merged.last_ts = max(r.last_ts, merged.last_ts or r.last_ts)
    return merged


def _receive(link: Connection, expected: str) -> object:
    try:
        kind, value = link.recv()
    except EOFError:
        raise RuntimeError("a replay process ended without its result") from None
    if kind == "error":
        raise RecordingError(str(value))
    assert kind == expected, kind
    return value


@dataclass(frozen=True)
class _Part:
    """What a forked process replays: one part of the households of a recording."""

    settings: Settings
    path: Path
    labels: list[Incident]
    part: int
    parts: int
    start: float | None
    """The recording's first time (the clock starts there, as one process's would)."""


def _replay_part(job: _Part, link: Connection) -> None:
    """A forked process: replay one part, tick on as far as the furthest part, send back."""
    try:
        with tempfile.TemporaryDirectory(prefix="gateway-replay-") as folder:
            result = asyncio.run(_part(job, throwaway_settings(job.settings, Path(folder)), link))
    except RecordingError as exc:
        link.send(("error", str(exc)))
        return
    link.send(("done", result))


async def _part(job: _Part, settings: Settings, link: Connection) -> tuple[ReplayReport, str]:
    out = io.StringIO()
    clock = ManualClock(datetime.fromtimestamp(job.start or 0.0, UTC))
    async with Replay(settings, clock, out, disposable=True) as replay:
        replay.tick_every_minute()
        own = [i for i in job.labels if part_of(i.household_id, job.parts) == job.part]
        marked = await mark_away(replay.core, own)
        messages = checked(read_recording(job.path))
        report = await replay.run(messages, keeper(replay.core.sources, job.part, job.parts))
        report.away_periods = marked
        link.send(("ticked", replay.ticked_through))
        furthest: datetime | None = link.recv()
        here = replay.ticked_through
        if furthest is not None and (here is None or furthest > here):
            await replay.tick_through(furthest)
    return report, out.getvalue()
