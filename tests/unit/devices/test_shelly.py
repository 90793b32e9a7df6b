"""Shelly Gen2+ status: what the golden payloads do not show (units, times, bad fields)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.devices.base import DeviceMessage, Rejected
from gateway.devices.catalogue import check_value
from gateway.devices.shelly import normalise
from gateway.models import DeviceKind, Metric

RECEIVED_AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def _message(subtopic: str, payload: object, zone: ZoneInfo | None = None) -> DeviceMessage:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return DeviceMessage("H001", "plug-1", subtopic, raw, RECEIVED_AT, zone)


def _values(subtopic: str, payload: object) -> dict[Metric, object]:
    return {r.metric: r.value for r in normalise(_message(subtopic, payload)).readings}


@pytest.mark.parametrize(
    ("subtopic", "body", "kwh"),
    [
        ("status/switch:0", {"aenergy": {"total": 1000}}, 1.0),
        ("status/pm1:0", {"aenergy": {"total": 2500.5}}, 2.5005),
        ("status/em1data:0", {"total_act_energy": 1264.15}, 1.26415),
        ("status/emdata:0", {"total_act": 1}, 0.001),
    ],
)
def test_energy_counters_are_watt_hours(subtopic: str, body: object, kwh: float):
    assert _values(subtopic, body) == {Metric.ENERGY_TOTAL_KWH: kwh}


def test_energy_keeps_every_watt_hour_digit_without_binary_noise():
    # 913.252 / 1000 in floats is 0.9132520000000001; rounded to 3 decimals it was 0.913,
    # losing the quarter watt-hours a slow counter moves by.
    assert _values("status/switch:0", {"aenergy": {"total": 913.252}}) == {
        Metric.ENERGY_TOTAL_KWH: 0.913252
    }


@pytest.mark.parametrize(
    ("subtopic", "body"),
    [
        ("status/switch:0", {"apower": 1500}),
        ("status/pm1:0", {"apower": 1500}),
        ("status/em1:0", {"act_power": 1500}),
        ("status/em:0", {"total_act_power": 1500, "a_act_power": 500}),
    ],
)
def test_power_is_watts(subtopic: str, body: object):
    (reading,) = normalise(_message(subtopic, body)).readings

    assert (reading.metric, reading.value, reading.unit) == (Metric.POWER_W, 1500.0, "W")
    assert reading.kind is DeviceKind.POWER_METER


def test_every_channel_is_read():
    assert _values("status/switch:1", {"apower": 12.5}) == {Metric.POWER_W: 12.5}


def test_readings_take_the_arrival_time_not_the_minute_stamp():
    body = {"apower": 3, "aenergy": {"total": 5, "minute_ts": 1795926600}}

    result = normalise(_message("status/switch:0", body, ZoneInfo("Asia/Shanghai")))

    assert {r.ts for r in result.readings} == {RECEIVED_AT}


def test_an_unmetered_switch_gives_no_readings():
    result = normalise(_message("status/switch:0", {"id": 0, "source": "init", "output": True}))

    assert result.readings == []
    assert result.problems == []


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ({"apower": "11.5", "aenergy": {"total": 5}}, Metric.ENERGY_TOTAL_KWH),
        ({"apower": 11.5, "aenergy": {"total": "5"}}, Metric.POWER_W),
        ({"apower": -3.2, "aenergy": {"total": 5}}, Metric.ENERGY_TOTAL_KWH),
        ({"apower": 11.5, "aenergy": {"total": -1}}, Metric.POWER_W),
    ],
)
def test_a_bad_field_is_a_problem_and_the_other_field_is_kept(body: object, kept: Metric):
    result = normalise(_message("status/switch:0", body))

    assert [r.metric for r in result.readings] == [kept]
    assert len(result.problems) == 1


def test_detectors_and_batteries():
    assert _values("status/smoke:0", {"id": 0, "alarm": True, "mute": False}) == {
        Metric.SMOKE: True
    }
    (leak,) = normalise(_message("status/flood:0", {"id": 0, "alarm": True})).readings
    assert (leak.metric, leak.value, leak.kind) == (
        Metric.WATER_LEAK,
        True,
        DeviceKind.WATER_LEAK_SENSOR,
    )
    assert _values("status/devicepower:0", {"battery": {"V": 2.9, "percent": 85}}) == {
        Metric.BATTERY_PCT: 85.0
    }


def test_a_smoke_alarm_that_is_not_a_boolean_is_a_problem():
    result = normalise(_message("status/smoke:0", {"alarm": "yes"}))

    assert result.readings == []
    assert len(result.problems) == 1


@pytest.mark.parametrize(
    "subtopic",
    [
        "status/sys",
        "status/wifi",
        "status/input:0",
        "status/temperature:0",
        "events/rpc",
        "rpc",
        "",
    ],
)
def test_components_without_care_meaning_are_ignored_whatever_they_hold(subtopic: str):
    result = normalise(_message(subtopic, b"\xff not even json"))

    assert result.readings == []
    assert result.problems == []


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"[1, 2]", "invalid_payload"),
        (b"true", "invalid_payload"),
        (b'{"apower": ', "invalid_json"),
    ],
)
def test_a_status_that_is_not_a_json_object_is_rejected(payload: bytes, code: str):
    with pytest.raises(Rejected) as caught:
        normalise(_message("status/switch:0", payload))

    assert caught.value.code == code


@pytest.mark.parametrize(("word", "online"), [(b"true", True), (b"false", False)])
def test_online_words(word: bytes, online: bool):
    (reading,) = normalise(_message("online", word)).readings

    assert (reading.metric, reading.value, reading.ts) == (Metric.ONLINE, online, RECEIVED_AT)


def test_a_cleared_last_will_is_no_reading():
    assert normalise(_message("online", b"")).readings == []


def test_an_unknown_online_word_is_rejected():
    with pytest.raises(Rejected) as caught:
        normalise(_message("online", b"1"))

    assert caught.value.code == "invalid_value"


_KEYS = ["apower", "aenergy", "total", "act_power", "total_act_energy", "total_act_power"]
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from([*_KEYS, "total_act", "alarm", "battery", "percent"]),
            children,
            max_size=5,
        )
    ),
    max_leaves=20,
)
_SUBTOPICS = [
    "online",
    "events/rpc",
    "status/sys",
    *(
        f"status/{c}:0"
        for c in ("switch", "pm1", "em1", "em1data", "em", "emdata", "smoke", "flood")
    ),
    "status/devicepower:0",
]


@given(
    subtopic=st.sampled_from(_SUBTOPICS),
    payload=st.binary(max_size=64) | _JSON.map(lambda v: json.dumps(v).encode()),
)
def test_any_payload_gives_valid_readings_or_is_rejected(subtopic: str, payload: bytes):
    try:
        result = normalise(_message(subtopic, payload))
    except Rejected:
        return
    for reading in result.readings:
        assert check_value(reading.metric, reading.value) == reading.value
    assert all(isinstance(p, str) for p in result.problems)
