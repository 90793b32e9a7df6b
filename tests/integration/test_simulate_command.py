"""`iot-gateway simulate`: the command users run, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.cli import main


def test_record_writes_messages_and_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    recording = tmp_path / "night.jsonl"
    code = main(
        [
            "simulate",
            "--households", "3",
            "--days", "1",
            "--scenario", "smoke",
            "--seed", "4",
            "--start", "2026-11-29T00:00:00+08:00",
            "--record", str(recording),
        ]
    )  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in recording.read_text().splitlines()]
    assert len(lines) > 500
    assert all(set(line) <= {"ts", "topic", "payload", "retain"} for line in lines)
    assert [line["ts"] for line in lines] == sorted(line["ts"] for line in lines)
    labels = [
        json.loads(line) for line in (tmp_path / "night.labels.jsonl").read_text().splitlines()
    ]
    smoke = [label for label in labels if label["type"] == "smoke"]
    assert smoke
    assert smoke[0]["household_id"] == "SIM0001"
    assert smoke[0]["alarm"] is True
    assert "wrote" in capsys.readouterr().err
    # The same seed gives the same stream.
    again = tmp_path / "again.jsonl"
    main(["simulate", "--households", "3", "--days", "1", "--scenario", "smoke", "--seed", "4",
          "--start", "2026-11-29T00:00:00+08:00", "--record", str(again)])  # fmt: skip
    assert again.read_bytes() == recording.read_bytes()


def test_an_unreachable_broker_is_one_line_and_a_failure(capsys: pytest.CaptureFixture[str]):
    code = main(["simulate", "--households", "1", "--days", "0.01", "--speed", "0",
                 "--broker", "mqtt://127.0.0.1:9"])  # fmt: skip
    assert code == 1
    assert "cannot reach the broker" in capsys.readouterr().err


def test_bad_arguments_are_refused(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit):
        main(["simulate", "--scenario", "meteor"])
    assert "invalid choice" in capsys.readouterr().err
    assert main(["simulate", "--households", "0"]) == 2
