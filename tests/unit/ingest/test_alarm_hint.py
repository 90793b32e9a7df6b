"""The network thread's look at a raw payload never misses an alarm, in any of the five formats.

`may_carry_alarm` decides which messages may go ahead of a backlog; a real alarm it missed would
wait behind thousands of meter readings. Every message that decodes to an alarm (`is_alarm`) must
pass it however its JSON is spelt; ordinary readings mostly do not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.config import default_sources
from gateway.devices import DeviceMessage, Rejected, normaliser_for
from gateway.ingest.lanes import may_carry_alarm
from gateway.ingest.limits import carries_alarm
from gateway.ingest.sources import SourceTable
from gateway.models import ButtonAction, Metric

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "devices"
RECEIVED = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
SOURCES = SourceTable(default_sources())

# Alarms as each format sends them, besides the golden fixtures (which have no z2m fall).
ALARMS = [
    ("homes/H1/smoke-1/telemetry", {"kind": "smoke_detector", "smoke": True}),
    ("homes/H1/gas-1/telemetry", {"gas_leak": True, "battery_pct": 80}),
    ("homes/H1/leak-1/telemetry", {"water_leak": True}),
    ("homes/H1/hm-1/telemetry", {"kind": "health_monitor", "fall": True}),
    ("homes/H1/btn-1/event", {"event": "sos"}),
    ("homes/H1/btn-1/event", {"event": "cancel"}),
    ("homes/H1/radar-1/event", {"event": "fall"}),
    ("homes/H1/btn-1/telemetry", {"button": "long"}),
    ("homes/H1/z2m/kitchen", {"gas": True, "smoke": False}),
    ("homes/H1/z2m/radar", {"fall_down_status": "fall", "presence": True}),
    ("homes/H1/z2m/radar2", {"fall_status": "fall_alarm"}),
    ("homes/H1/z2m/bath", {"water_leak": True, "battery": 90}),
    ("homes/H1/z2m/sos", {"action": "panic"}),
    ("homes/H1/shelly/smoke-1/status/smoke:0", {"id": 0, "alarm": True, "mute": False}),
    ("homes/H1/shelly/flood-1/status/flood:0", {"id": 0, "alarm": True}),
]
ORDINARY = [
    ("homes/H1/smoke-1/telemetry", {"kind": "smoke_detector", "smoke": False, "battery_pct": 91}),
    ("homes/H1/power-1/telemetry", {"power_w": 1210.0, "energy_total_kwh": 5321.44}),
    ("homes/H1/hm-1/telemetry", {"heart_rate_bpm": 72, "spo2_pct": 97, "fall": False}),
    ("homes/H1/z2m/door", {"contact": True, "battery": 100}),
    ("homes/H1/tasmota/tele/plug/SENSOR", {"ENERGY": {"Power": 12, "Total": 3.2}}),
]
SPELLINGS = [
    {},
    {"separators": (",", ":")},
    {"indent": 2},
    {"separators": (" ,", " :  ")},
    {"ensure_ascii": False},
]


def readings_of(topic: str, raw: bytes) -> list[Any]:
    match = SOURCES.match(topic)
    assert match is not None, topic
    message = DeviceMessage(
        match.household_id, match.device_id, match.subtopic, raw, RECEIVED, match.zone
    )
    try:
        return normaliser_for(match.format)(message).readings
    except Rejected:
        return []


def fixture_cases() -> list[tuple[str, Any]]:
    cases = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        case = json.loads(path.read_text(encoding="utf-8"))
        cases.append((case["topic"], case["payload"]))
    return cases


@pytest.mark.parametrize("spelling", SPELLINGS, ids=str)
@pytest.mark.parametrize(("topic", "payload"), ALARMS + fixture_cases())
def test_every_alarm_passes_the_hint_however_it_is_spelt(
    topic: str, payload: Any, spelling: dict[str, Any]
):
    raw = payload.encode() if isinstance(payload, str) else json.dumps(payload, **spelling).encode()
    if carries_alarm(readings_of(topic, raw)):
        assert may_carry_alarm(raw), raw


def test_the_alarms_written_out_here_are_alarms():
    """So the test above cannot pass vacuously."""
    for topic, payload in ALARMS:
        assert carries_alarm(readings_of(topic, json.dumps(payload).encode())), payload


@pytest.mark.parametrize(("topic", "payload"), ORDINARY)
def test_ordinary_readings_stay_in_the_ordinary_lane(topic: str, payload: dict[str, Any]):
    raw = json.dumps(payload).encode()
    assert readings_of(topic, raw)
    assert not may_carry_alarm(raw)


def test_a_key_spelt_with_escapes_is_looked_at_closer():
    raw = b'{"\\u0073moke": true}'
    assert carries_alarm(readings_of("homes/H1/smoke-1/telemetry", raw))
    assert may_carry_alarm(raw)


METRIC_VALUES = st.one_of(
    st.booleans(),
    st.sampled_from([*(a.value for a in ButtonAction), "fall"]),
    st.floats(min_value=0, max_value=100),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(st.sampled_from([m.value for m in Metric] + ["event"]), METRIC_VALUES),
    subtopic=st.sampled_from(["telemetry", "event"]),
    spelling=st.sampled_from(SPELLINGS),
)
def test_any_native_payload_that_decodes_to_an_alarm_passes(
    body: dict[str, Any], subtopic: str, spelling: dict[str, Any]
):
    raw = json.dumps(body, **spelling).encode()
    if carries_alarm(readings_of(f"homes/H1/dev-1/{subtopic}", raw)):
        assert may_carry_alarm(raw), raw
