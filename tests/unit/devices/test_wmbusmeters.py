"""wmbusmeters JSON: what the golden payloads do not show (units, media, nulls, times)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.devices.base import DeviceMessage, Rejected
from gateway.devices.catalogue import check_value
from gateway.devices.wmbusmeters import normalise
from gateway.models import DeviceKind, Metric

RECEIVED_AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def _message(payload: object, zone: ZoneInfo | None = None) -> DeviceMessage:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return DeviceMessage("H001", "meter-1", "", raw, RECEIVED_AT, zone)


def _values(payload: object) -> dict[Metric, object]:
    return {r.metric: r.value for r in normalise(_message(payload)).readings}


@pytest.mark.parametrize(
    ("m3", "litres"),
    [
        (0.001, 1.0),
        (1234.5678, 1234567.8),
        (0, 0.0),
        # Exact litres from three decimals of m³ (0.167 * 1000 is 167.00000000000003 in floats).
        (1.234, 1234.0),
        (0.167, 167.0),
        (123.529, 123529.0),
    ],
)
def test_cubic_metres_become_litres(m3: float, litres: float):
    (reading,) = normalise(_message({"media": "water", "total_m3": m3})).readings

    assert (reading.metric, reading.value, reading.unit) == (Metric.WATER_TOTAL_L, litres, "L")
    assert reading.kind is DeviceKind.WATER_METER


def test_kilowatts_become_watts_and_kilowatt_hours_stay():
    readings = normalise(
        _message(
            {
                "media": "electricity",
                "total_energy_consumption_kwh": 15694.05,
                "current_power_consumption_kw": 1.5,
            }
        )
    ).readings

    assert {(r.metric, r.value, r.kind) for r in readings} == {
        (Metric.ENERGY_TOTAL_KWH, 15694.05, DeviceKind.POWER_METER),
        (Metric.POWER_W, 1500.0, DeviceKind.POWER_METER),
    }


@pytest.mark.parametrize("media", ["water", "cold water", "warm water", "hot water", "Cold Water"])
def test_every_water_media_is_a_water_meter(media: str):
    assert _values({"media": media, "total_m3": 1}) == {Metric.WATER_TOTAL_L: 1000.0}


@pytest.mark.parametrize("media", ["gas", "heat", "heat cost allocation", "Unknown", "other"])
def test_other_media_give_no_readings_even_with_known_field_names(media: str):
    result = normalise(
        _message({"media": media, "total_m3": 12.5, "total_energy_consumption_kwh": 3781})
    )

    assert result.readings == []
    assert result.problems == []


def test_without_media_the_field_names_decide():
    assert _values({"total_m3": 2, "current_power_consumption_kw": 0.25}) == {
        Metric.WATER_TOTAL_L: 2000.0,
        Metric.POWER_W: 250.0,
    }


def test_a_media_that_is_not_text_is_a_problem():
    result = normalise(_message({"media": 7, "total_m3": 2}))

    assert result.readings == []
    assert len(result.problems) == 1


def test_null_fields_are_no_readings_and_no_problems():
    result = normalise(
        _message(
            {
                "media": "electricity",
                "total_energy_consumption_kwh": None,
                "current_power_consumption_kw": 0.33,
                "voltage_at_phase_2_v": None,
            }
        )
    )

    assert [(r.metric, r.value) for r in result.readings] == [(Metric.POWER_W, 330.0)]
    assert result.problems == []


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ({"total_energy_consumption_kwh": "7.94", "current_power_consumption_kw": 1}, "power_w"),
        ({"total_energy_consumption_kwh": 7.94, "current_power_consumption_kw": -0.5}, "energy"),
        ({"total_energy_consumption_kwh": 7.94, "current_power_consumption_kw": [1]}, "energy"),
    ],
)
def test_a_bad_field_is_a_problem_and_the_other_field_is_kept(body: dict[str, object], kept: str):
    result = normalise(_message({"media": "electricity", **body}))

    expected = Metric.POWER_W if kept == "power_w" else Metric.ENERGY_TOTAL_KWH
    assert [r.metric for r in result.readings] == [expected]
    assert len(result.problems) == 1


def test_the_timestamp_in_utc_is_the_event_time():
    message = _message({"media": "water", "total_m3": 1, "timestamp": "2026-11-29T04:59:30Z"})

    assert normalise(message).readings[0].ts == datetime(2026, 11, 29, 4, 59, 30, tzinfo=UTC)


def test_a_timestamp_without_offset_needs_the_sources_zone():
    body = {"media": "water", "total_m3": 1, "timestamp": "2026-11-29 12:59:30"}

    assert normalise(_message(body)).readings[0].ts == RECEIVED_AT
    in_shanghai = normalise(_message(body, ZoneInfo("Asia/Shanghai"))).readings[0].ts
    assert in_shanghai == datetime(2026, 11, 29, 4, 59, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    "timestamp", ["1111-11-11T11:11:11Z", "2026-12-03T00:00:00Z", "soon", 5e20]
)
def test_an_impossible_timestamp_costs_the_time_not_the_reading(timestamp: object):
    result = normalise(_message({"media": "water", "total_m3": 1, "timestamp": timestamp}))

    assert [(r.value, r.ts) for r in result.readings] == [(1000.0, RECEIVED_AT)]
    assert len(result.problems) == 1


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"[]", "invalid_payload"),
        (b"123.529", "invalid_payload"),
        (b"MyTapWater;33225544;123.529", "invalid_json"),
        (b"\xc3\x28", "invalid_encoding"),
    ],
)
def test_a_payload_that_is_not_a_json_object_is_rejected(payload: bytes, code: str):
    with pytest.raises(Rejected) as caught:
        normalise(_message(payload))

    assert caught.value.code == code


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=10,
)
_BODY = st.fixed_dictionaries(
    {},
    optional={
        "media": st.sampled_from(["water", "electricity", "gas", "warm water"]) | _JSON,
        "total_m3": _JSON,
        "total_energy_consumption_kwh": _JSON,
        "current_power_consumption_kw": _JSON,
        "timestamp": st.datetimes().map(lambda d: d.isoformat() + "Z") | _JSON,
    },
)


@given(payload=st.binary(max_size=64) | (_BODY | _JSON).map(lambda v: json.dumps(v).encode()))
def test_any_payload_gives_valid_readings_or_is_rejected(payload: bytes):
    try:
        result = normalise(_message(payload))
    except Rejected:
        return
    for reading in result.readings:
        assert check_value(reading.metric, reading.value) == reading.value
        assert reading.ts.tzinfo is not None
    assert all(isinstance(p, str) for p in result.problems)
