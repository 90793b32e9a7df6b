"""Tasmota telemetry: what the golden payloads do not show (times, units, bad fields)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.devices.base import DeviceMessage, Rejected
from gateway.devices.catalogue import check_value
from gateway.devices.tasmota import normalise
from gateway.models import DeviceKind, Metric

RECEIVED_AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def _message(subtopic: str, payload: object, zone: ZoneInfo | None = None) -> DeviceMessage:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return DeviceMessage("H001", "plug-1", subtopic, raw, RECEIVED_AT, zone)


def _values(payload: object, zone: ZoneInfo | None = None) -> dict[Metric, object]:
    return {r.metric: r.value for r in normalise(_message("SENSOR", payload, zone)).readings}


def test_energy_total_is_already_kilowatt_hours_and_power_watts():
    readings = normalise(_message("SENSOR", {"ENERGY": {"Total": 1234.5, "Power": 2000}})).readings

    assert {(r.metric, r.value, r.unit) for r in readings} == {
        (Metric.ENERGY_TOTAL_KWH, 1234.5, "kWh"),
        (Metric.POWER_W, 2000.0, "W"),
    }
    assert {r.kind for r in readings} == {DeviceKind.POWER_METER}


def test_per_phase_totals_are_added():
    assert _values({"ENERGY": {"Total": [1.5, 2.25, 0.25], "Power": [100, 0, 50.5]}}) == {
        Metric.ENERGY_TOTAL_KWH: 4.0,
        Metric.POWER_W: 150.5,
    }


def test_per_phase_totals_add_up_without_binary_noise():
    # 0.1 + 0.2 is 0.30000000000000004 in floats; the phases' registers read 0.1 and 0.2 kWh.
    assert _values({"ENERGY": {"Total": [0.1, 0.2]}}) == {Metric.ENERGY_TOTAL_KWH: 0.3}


def test_local_time_without_a_zone_is_replaced_by_arrival_time():
    result = normalise(_message("SENSOR", {"Time": "2026-11-29T12:30:00", "ENERGY": {"Power": 5}}))

    assert result.readings[0].ts == RECEIVED_AT
    assert result.problems == []


def test_local_time_is_read_in_the_sources_zone():
    message = _message("SENSOR", {"Time": "2026-11-29T12:30:00", "ENERGY": {"Power": 5}}, SHANGHAI)

    assert normalise(message).readings[0].ts == datetime(2026, 11, 29, 4, 30, tzinfo=UTC)


def test_time_with_an_offset_needs_no_zone():
    # SetOption52 appends the device's offset to Time.
    message = _message("SENSOR", {"Time": "2026-11-29T12:30:00+08:00", "ENERGY": {"Power": 5}})

    assert normalise(message).readings[0].ts == datetime(2026, 11, 29, 4, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "body",
    [
        {"Time": "2026-11-29T12:30:00", "Epoch": 1795926600},  # Time 2: local time and UTC epoch
        {"Time": 1795926600},  # Time 3: epoch only
    ],
)
def test_epoch_seconds_are_utc(body: dict[str, object]):
    message = _message("SENSOR", {**body, "ENERGY": {"Power": 5}}, ZoneInfo("Europe/Berlin"))

    assert normalise(message).readings[0].ts == datetime(2026, 11, 29, 4, 30, tzinfo=UTC)


def test_an_unsynchronised_clock_costs_the_time_not_the_readings():
    message = _message("SENSOR", {"Time": "1970-01-01T00:00:12", "ENERGY": {"Power": 5}}, SHANGHAI)

    result = normalise(message)

    assert [(r.metric, r.value, r.ts) for r in result.readings] == [
        (Metric.POWER_W, 5.0, RECEIVED_AT)
    ]
    assert len(result.problems) == 1
    assert "arrival time used" in result.problems[0]


@pytest.mark.parametrize(
    ("energy", "kept"),
    [
        ({"Power": "5 W", "Total": 3.2}, Metric.ENERGY_TOTAL_KWH),
        ({"Power": 5, "Total": True}, Metric.POWER_W),
        ({"Power": [5, "x"], "Total": 3.2}, Metric.ENERGY_TOTAL_KWH),
        ({"Power": [], "Total": 3.2}, Metric.ENERGY_TOTAL_KWH),
        ({"Power": 5, "Total": -0.145}, Metric.POWER_W),
        ({"Power": -431, "Total": 3.2}, Metric.ENERGY_TOTAL_KWH),
    ],
)
def test_a_bad_field_is_a_problem_and_the_other_field_is_kept(energy: object, kept: Metric):
    result = normalise(_message("SENSOR", {"ENERGY": energy}))

    assert [r.metric for r in result.readings] == [kept]
    assert len(result.problems) == 1


def test_sensors_without_energy_give_no_readings():
    result = normalise(_message("SENSOR", {"Time": "2026-11-29T12:30:00", "DS18B20": {"Id": 1}}))

    assert result.readings == []
    assert result.problems == []


@pytest.mark.parametrize("subtopic", ["STATE", "INFO1", "RESULT", "UPTIME", ""])
def test_other_telemetry_is_ignored_whatever_it_holds(subtopic: str):
    result = normalise(_message(subtopic, b"\xff not even json"))

    assert result.readings == []
    assert result.problems == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"[1, 2]", "invalid_payload"),
        (b'"ENERGY"', "invalid_payload"),
        (b'{"ENERGY": ', "invalid_json"),
        (b"\xff\xfe", "invalid_encoding"),
    ],
)
def test_a_sensor_payload_that_is_not_a_json_object_is_rejected(payload: bytes, code: str):
    with pytest.raises(Rejected) as caught:
        normalise(_message("SENSOR", payload))

    assert caught.value.code == code


@pytest.mark.parametrize(("word", "online"), [(b"Online", True), (b"offline\n", False)])
def test_last_will_words(word: bytes, online: bool):
    (reading,) = normalise(_message("LWT", word)).readings

    assert (reading.metric, reading.value, reading.kind) == (Metric.ONLINE, online, None)


def test_a_cleared_last_will_is_no_reading():
    assert normalise(_message("LWT", b"")).readings == []


def test_an_unknown_last_will_is_rejected():
    with pytest.raises(Rejected) as caught:
        normalise(_message("LWT", b"Restarting"))

    assert caught.value.code == "invalid_value"


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["ENERGY", "Power", "Total", "Time", "Epoch", "x"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)


@given(
    subtopic=st.sampled_from(["SENSOR", "STATE", "LWT", "INFO1"]),
    payload=st.binary(max_size=64) | _JSON.map(lambda v: json.dumps(v).encode()),
    zone=st.sampled_from([None, SHANGHAI]),
)
def test_any_payload_gives_valid_readings_or_is_rejected(
    subtopic: str, payload: bytes, zone: ZoneInfo | None
):
    try:
        result = normalise(_message(subtopic, payload, zone))
    except Rejected:
        return
    for reading in result.readings:
        assert check_value(reading.metric, reading.value) == reading.value
        assert reading.ts.tzinfo is not None
    assert all(isinstance(p, str) for p in result.problems)
