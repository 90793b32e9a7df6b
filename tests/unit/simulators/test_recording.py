"""Recordings and labels survive a round trip through their files."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from simulators import Neighbourhood, read_labels, read_recording, write_labels, write_recording
from tests.unit.simulators.runs import START


def test_a_recording_reads_back_as_written(tmp_path: Path):
    nb = Neighbourhood(4, seed=8, start=START, days=0.25, scenario="last_will")
    messages = list(itertools.islice(nb.messages(), 500))
    path = tmp_path / "run.jsonl"
    assert write_recording(messages, path) == 500
    assert list(read_recording(path)) == messages
    first = json.loads(path.read_text(encoding="utf-8").splitlines()[0])
    assert set(first) <= {"ts", "topic", "payload", "retain"}
    assert isinstance(first["ts"], float)
    assert isinstance(first["payload"], str)


def test_labels_say_which_cases_are_alarms(tmp_path: Path):
    nb = Neighbourhood(18, seed=5, start=START, days=1.0, scenario="mixed")
    path = tmp_path / "labels.jsonl"
    assert write_labels(nb.incidents, path) == len(nb.incidents)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert set(rows[0]) == {"household_id", "type", "start", "end", "device_id", "alarm"}
    assert {r["type"] for r in rows if not r["alarm"]} == {"late_morning", "day_out", "away"}
    assert read_labels(path) == nb.incidents


def test_a_broken_line_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"ts": 1, "topic": "a", "payload": "b"}\n{"ts": 2}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        list(read_recording(path))
