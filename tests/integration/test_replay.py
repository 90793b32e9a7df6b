"""`iot-gateway record` and `iot-gateway replay`: the commands installers run, end to end."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.cli import main
from simulators import Incident, read_labels, read_recording, write_recording
from tests.integration.harness import Publisher

START = "2026-11-29T00:00:00+08:00"


def _simulate(folder: Path, scenario: str) -> tuple[Path, Incident]:
    """A recording of three homes for a day with `scenario` in SIM0001; and the labelled case."""
    recording = folder / f"{scenario}.jsonl"
    code = main(["simulate", "--households", "3", "--days", "1", "--scenario", scenario,
                 "--seed", "4", "--start", START, "--record", str(recording)])  # fmt: skip
    assert code == 0
    (incident,) = [i for i in read_labels(folder / f"{scenario}.labels.jsonl") if i.alarm]
    return recording, incident


def _window(recording: Path, start: float, before_s: float, after_s: float) -> Path:
    """The part of a recording around `start` (a recording begun and stopped at those times)."""
    part = recording.with_name(f"{recording.stem}.part.jsonl")
    messages = [m for m in read_recording(recording) if start - before_s <= m.ts <= start + after_s]
    write_recording(messages, part)
    return part


def _alerts(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Incident]]:
    folder = tmp_path_factory.mktemp("recordings")
    return {scenario: _simulate(folder, scenario) for scenario in ("smoke", "sos")}


def test_a_day_replayed_opens_the_smoke_alarm_at_its_time(
    recordings: dict[str, tuple[Path, Incident]], capsys: pytest.CaptureFixture[str]
) -> None:
    recording, incident = recordings["smoke"]
    capsys.readouterr()
    assert main(["replay", str(recording)]) == 0
    out, err = capsys.readouterr()
    smoke = [a for a in _alerts(out) if a["rule"] == "smoke_alarm"]
    assert len(smoke) == 1
    alert = smoke[0]
    assert (alert["household_id"], alert["device_id"]) == ("SIM0001", incident.device_id)
    assert alert["severity"] == "critical"
    # Event time, not the time the replay ran; the smoke message comes within a minute.
    assert 0 <= datetime.fromisoformat(alert["opened_at"]).timestamp() - incident.start < 60
    assert alert["evidence"]["metric"] == "smoke"
    assert alert["evidence"]["value"] is True
    summary = json.loads(err.strip().splitlines()[-1])
    assert summary["messages"] == sum(1 for _ in read_recording(recording))
    assert summary["households_registered"] == 3
    assert summary["dead_letters"] == {}  # every household registered, every format understood
    assert summary["alerts"]["smoke_alarm"] == 1


def test_a_call_button_press_is_replayed(
    recordings: dict[str, tuple[Path, Incident]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    recording, incident = recordings["sos"]
    part = _window(recording, incident.start, before_s=3600, after_s=600)
    capsys.readouterr()
    assert main(["replay", str(part)]) == 0
    calls = [a for a in _alerts(capsys.readouterr().out) if a["rule"] == "call_button"]
    assert [a["household_id"] for a in calls] == ["SIM0001"]
    assert 0 <= datetime.fromisoformat(calls[0]["opened_at"]).timestamp() - incident.start < 60


def test_each_alert_line_says_whom_the_policy_contacts_first_and_a_config_can_change_it(
    recordings: dict[str, tuple[Path, Incident]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recording, incident = recordings["smoke"]
    part = _window(recording, incident.start, before_s=3600, after_s=600)
    capsys.readouterr()
    assert main(["replay", str(part)]) == 0
    (smoke,) = [a for a in _alerts(capsys.readouterr().out) if a["rule"] == "smoke_alarm"]
    assert smoke["first_contact"] == "visitor"

    config = tmp_path / "gateway.toml"
    config.write_text(
        "[escalation]\npolicies = { critical = [\n"
        '  { to = ["control_room"], channels = ["sms", "voice"], wait_min = 5 },\n] }\n',
        encoding="utf-8",
    )
    assert main(["--config", str(config), "replay", str(part)]) == 0
    (smoke,) = [a for a in _alerts(capsys.readouterr().out) if a["rule"] == "smoke_alarm"]
    assert smoke["first_contact"] == "control_room"


def test_an_inactivity_alert_is_first_a_check_in_call_to_the_elder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "away.jsonl"
    code = main(["simulate", "--households", "2", "--days", "2", "--scenario", "away",
                 "--seed", "4", "--start", START, "--record", str(recording)])  # fmt: skip
    assert code == 0
    capsys.readouterr()
    assert main(["replay", str(recording)]) == 0
    inactivity = [
        a
        for a in _alerts(capsys.readouterr().out)
        if a["rule"] in ("no_water_use", "no_power_use", "missed_routine")
    ]
    assert inactivity
    assert {a["first_contact"] for a in inactivity} == {"elder"}


def test_a_rules_file_shows_what_it_would_have_changed(
    recordings: dict[str, tuple[Path, Incident]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recording, incident = recordings["smoke"]
    part = _window(recording, incident.start, before_s=3600, after_s=600)
    rules = tmp_path / "rules.toml"
    rules.write_text("[smoke_alarm]\nenabled = false\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["replay", str(part), "--rules", str(rules)]) == 0
    assert not [a for a in _alerts(capsys.readouterr().out) if a["rule"] == "smoke_alarm"]


def test_a_bad_rules_file_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "empty.jsonl"
    recording.write_text("", encoding="utf-8")
    rules = tmp_path / "rules.toml"
    rules.write_text("[smoke_alarm]\nenabled = 'perhaps'\n", encoding="utf-8")
    assert main(["replay", str(recording), "--rules", str(rules)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "smoke_alarm" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such recording"),
        (
            '{"ts": 1795910400.0, "topic": "homes/H1/d/telemetry", "payload": "{}"}\nnot json\n',
            ":2:",
        ),
        ('{"ts": "soon", "topic": "t", "payload": ""}\n', ":1:"),
    ],
)
def test_a_missing_or_malformed_recording_is_one_line_and_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | None, expected: str
) -> None:
    recording = tmp_path / "broken.jsonl"
    if content is not None:
        recording.write_text(content, encoding="utf-8")
    assert main(["replay", str(recording)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert expected in err


@pytest.mark.mqtt
def test_record_captures_what_is_published(
    mqtt_url: str, unique_id: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "live.jsonl"
    prefix = f"rec-{unique_id}"
    result: list[int] = []
    args = ["record", "--out", str(out), "--broker", mqtt_url, "--topic", f"{prefix}/#",
            "--count", "3", "--duration", "10"]  # fmt: skip
    recorder = threading.Thread(target=lambda: result.append(main(args)))
    recorder.start()
    publisher = Publisher(mqtt_url)
    try:
        deadline = time.monotonic() + 5
        while not out.exists() and time.monotonic() < deadline:  # subscribed before it opens
            time.sleep(0.02)
        before = time.time()
        publisher.send(f"{prefix}/homes/H1/smoke-1/telemetry", {"smoke": True})
        publisher.send(f"{prefix}/homes/H1/smoke-1/status", "offline", retain=True)
        publisher.send(f"{prefix}/homes/H1/meter/raw", b"\xff\xfe")
    finally:
        recorder.join(15)
        publisher.client.publish(f"{prefix}/homes/H1/smoke-1/status", b"", qos=1, retain=True)
        publisher.close()
    assert result == [0]
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["topic"].removeprefix(prefix) for line in lines] == [
        "/homes/H1/smoke-1/telemetry",
        "/homes/H1/smoke-1/status",
        "/homes/H1/meter/raw",
    ]
    assert json.loads(lines[0]["payload"]) == {"smoke": True}
    assert all(before - 1 <= line["ts"] <= time.time() for line in lines)
    assert "retain" not in lines[0]
    assert lines[2]["payload"] == "\\xff\\xfe"
    assert "recorded 3 messages" in capsys.readouterr().err
    # What record writes, replay reads.
    assert [m.topic for m in read_recording(out)] == [line["topic"] for line in lines]


def test_away_periods_in_a_labels_file_keep_inactivity_rules_quiet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    recording = tmp_path / "away.jsonl"
    code = main(["simulate", "--households", "2", "--days", "2", "--scenario", "away",
                 "--seed", "4", "--start", START, "--record", str(recording)])  # fmt: skip
    assert code == 0
    labels = tmp_path / "away.labels.jsonl"
    (away,) = [i for i in read_labels(labels) if i.type == "away"]
    inactivity = {"no_water_use", "no_power_use", "missed_routine"}

    capsys.readouterr()
    assert main(["replay", str(recording)]) == 0
    unmarked = [a for a in _alerts(capsys.readouterr().out) if a["rule"] in inactivity]
    # Nobody told the gateway: an empty home looks like an elder in trouble.
    assert [a["household_id"] for a in unmarked] == [away.household_id]

    assert main(["replay", str(recording), "--labels", str(labels)]) == 0
    out, err = capsys.readouterr()
    assert [a for a in _alerts(out) if a["rule"] in inactivity] == []
    assert json.loads(err.strip().splitlines()[-1])["away_periods"] == 1


def test_a_missing_labels_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    recording = tmp_path / "empty.jsonl"
    recording.write_text("", encoding="utf-8")
    assert main(["replay", str(recording), "--labels", str(tmp_path / "nope.jsonl")]) == 1
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0
    assert "no such labels file" in err


def test_a_kept_database_has_the_same_alerts_its_readings_and_the_charts_index(
    recordings: dict[str, tuple[Path, Incident]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recording, _ = recordings["smoke"]
    capsys.readouterr()
    assert main(["replay", str(recording), "--workers", "1"]) == 0
    thrown_away = capsys.readouterr().out
    kept = tmp_path / "kept.db"
    assert main(["replay", str(recording), "--database", f"sqlite+aiosqlite:///{kept}"]) == 0
    out, err = capsys.readouterr()
    assert out == thrown_away
    assert "smoke_alarm" in out
    with sqlite3.connect(kept) as db:
        (stored,) = db.execute("SELECT count(*) FROM readings").fetchone()
        indexes = {row[1] for row in db.execute("PRAGMA index_list(readings)")}
    assert stored == json.loads(err.strip().splitlines()[-1])["readings"]
    assert "ix_readings_household_ts" in indexes  # the API's charts read a kept replay
