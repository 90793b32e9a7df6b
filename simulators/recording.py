"""Recordings and labels on disk, as JSON lines (UTF-8, one object per line).

Recording:  {"ts": 1772380800.0, "topic": "homes/SIM0001/wmbus/water-1", "payload": "<text>"}
            with "retain": true added on retained messages (availability, last wills).
Labels:     {"household_id": "SIM0001", "type": "smoke", "start": 1772425800.0,
             "end": 1772426700.0, "device_id": "kitchen-smoke", "alarm": true}
`ts`, `start` and `end` are epoch seconds (UTC); `end` is null when the incident outlasts the
recording. `alarm` is false for the hard normal days (late_morning, day_out, away): a rule that
alerts on them raises a false alarm.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from simulators.model import Incident, Message


def write_recording(messages: Iterable[Message], path: Path | str) -> int:
    """Write `messages` as JSON lines; returns how many were written."""
    count = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for m in messages:
            line: dict[str, object] = {"ts": m.ts, "topic": m.topic, "payload": m.payload}
            if m.retain:
                line["retain"] = True
            out.write(json.dumps(line, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_recording(path: Path | str) -> Iterator[Message]:
    """The messages of a recording, lazily, in file order."""
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield Message(
                    float(row["ts"]),
                    str(row["topic"]),
                    str(row["payload"]),
                    bool(row.get("retain")),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a recorded message ({exc})") from None


def write_labels(incidents: Iterable[Incident], path: Path | str) -> int:
    """Write the incidents' ground truth as JSON lines; returns how many were written."""
    count = 0
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for i in incidents:
            row = {
                "household_id": i.household_id,
                "type": i.type,
                "start": i.start,
                "end": i.end,
                "device_id": i.device_id,
                "alarm": i.alarm,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_labels(path: Path | str) -> list[Incident]:
    """The incidents of a labels file."""
    with Path(path).open(encoding="utf-8") as lines:
        rows = [json.loads(line) for line in lines if line.strip()]
    return [
        Incident(
            r["household_id"],
            r["type"],
            float(r["start"]),
            None if r["end"] is None else float(r["end"]),
            r.get("device_id"),
        )
        for r in rows
    ]
