"""`iot-gateway replay --workers N`: households replayed in parallel processes, each into a
real SQLite database of its own, must print what one process prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from gateway.replay import ReplayReport
from gateway.replay_parallel import merge_alert_lines, merge_reports, part_of
from simulators import Message, read_recording, write_recording

START = "2026-11-29T00:00:00+08:00"
SILENT = "SIM0004"
"""Alone in its part of two (the others are in part 0): its devices fall silent halfway."""


def _replay(
    recording: Path, workers: int, capsys: pytest.CaptureFixture[str]
) -> tuple[list[str], dict[str, Any]]:
    capsys.readouterr()
    labels = recording.with_name(recording.name.replace(".jsonl", ".labels.jsonl"))
    args = ["replay", str(recording), "--workers", str(workers)]
    if labels.is_file():
        args += ["--labels", str(labels)]
    assert main(args) == 0
    out, err = capsys.readouterr()
    summary = json.loads(err.strip().splitlines()[-1])
    del summary["wall_s"], summary["msgs_per_s"]
    return [line for line in out.splitlines() if line.strip()], summary


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four homes for two days, a smoke alarm in SIM0001; SIM0004 goes silent after noon of
    the first day while the others go on, and a message no source matches."""
    folder = tmp_path_factory.mktemp("parallel")
    full = folder / "full.jsonl"
    code = main(["simulate", "--households", "4", "--days", "2", "--scenario", "smoke",
                 "--seed", "4", "--start", START, "--record", str(full)])  # fmt: skip
    assert code == 0
    messages = list(read_recording(full))
    cut = messages[0].ts + 12 * 3600
    kept = [m for m in messages if not (f"/{SILENT}/" in m.topic and m.ts > cut)]
    kept.insert(10, Message(kept[10].ts, "elsewhere/x", "{}", False))
    part = folder / "cut.jsonl"
    write_recording(kept, part)
    (folder / "full.labels.jsonl").rename(folder / "cut.labels.jsonl")
    return part


def test_the_households_fall_into_two_parts_as_this_test_assumes() -> None:
    assert [part_of(f"SIM000{i}", 2) for i in (1, 2, 3, 4)] == [0, 0, 0, 1]
    assert part_of("", 2) == 0  # a message of no household


def test_two_and_three_workers_print_the_alerts_and_summary_of_one(
    recording: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    one, summary = _replay(recording, 1, capsys)
    alerts = [json.loads(line) for line in one]
    # The silent home's devices are found offline on the minutes the other homes' readings
    # pass: its own part must tick on to them after its last message.
    assert any(a["rule"] == "device_offline" and a["household_id"] == SILENT for a in alerts)
    assert any(a["rule"] == "smoke_alarm" for a in alerts)
    assert summary["dead_letters"] == {"no_source": 1}
    for workers in (2, 3):
        lines, parted = _replay(recording, workers, capsys)
        assert lines == one
        assert parted == summary


def test_merged_alerts_come_in_the_order_they_were_opened_then_by_household() -> None:
    def line(at: str, household: str, rule: str) -> str:
        return json.dumps({"opened_at": at, "household_id": household, "rule": rule})

    part_a = "\n".join([line("2026-11-29T01:00:00+00:00", "H2", "a"),
                        line("2026-11-29T03:00:00+00:00", "H2", "b")])  # fmt: skip
    part_b = "\n".join([line("2026-11-29T02:00:00+00:00", "H1", "c"),
                        line("2026-11-29T03:00:00+00:00", "H1", "d")])  # fmt: skip
    merged = [json.loads(x)["rule"] for x in merge_alert_lines([part_a, part_b])]
    assert merged == ["a", "c", "d", "b"]


def test_merged_summary_adds_up_the_parts_and_spans_first_to_last() -> None:
    a = ReplayReport(messages=3, readings=5, households_registered=1, first_ts=10.0, last_ts=50.0)
    a.alerts.update(smoke_alarm=1)
    a.dead_letters.update(no_source=2)
    b = ReplayReport(messages=4, readings=6, households_registered=2, first_ts=5.0, last_ts=40.0)
    b.alerts.update(smoke_alarm=1, device_offline=1)
    merged = merge_reports([a, b])
    assert (merged.messages, merged.readings, merged.households_registered) == (7, 11, 3)
    assert merged.alerts == {"smoke_alarm": 2, "device_offline": 1}
    assert merged.dead_letters == {"no_source": 2}
    assert (merged.first_ts, merged.last_ts) == (5.0, 50.0)


def test_small_batches_print_the_same_evidence_in_parts_as_in_one_process(
    recording: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An alert is printed after its batch with what repeats in the batch added to its
    # evidence: the parts must cut their batches where one process does.
    monkeypatch.setattr("gateway.replay.BATCH_SIZE", 40)  # (forked parts inherit it)
    one, summary = _replay(recording, 1, capsys)
    two, parted = _replay(recording, 2, capsys)
    assert two == one
    assert parted == summary
