"""The metric catalogue (one schema per metric) and the registry of payload formats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.devices import (
    FORMATS,
    DeviceMessage,
    Normalised,
    Normaliser,
    Rejected,
    native,
    normaliser_for,
)
from gateway.devices.catalogue import (
    CATALOGUE,
    KIND_BY_METRIC,
    InvalidValue,
    ValueType,
    check_value,
    format_value,
    unit_of,
)
from gateway.models import ButtonAction, DeviceKind, Metric

RECEIVED = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def test_every_metric_has_a_catalogue_entry():
    assert set(CATALOGUE) == set(Metric)


@pytest.mark.parametrize("metric", [m for m, s in CATALOGUE.items() if s.type is ValueType.NUMBER])
def test_every_number_has_a_unit_a_range_and_a_display_precision(metric: Metric):
    spec = CATALOGUE[metric]
    assert spec.unit
    assert spec.minimum is not None
    assert spec.maximum is not None
    assert spec.minimum < spec.maximum
    assert spec.display_decimals is not None
    assert unit_of(metric) == spec.unit


@pytest.mark.parametrize("metric", [m for m, s in CATALOGUE.items() if s.type is ValueType.BOOL])
def test_true_false_metrics_have_no_unit(metric: Metric):
    assert unit_of(metric) is None
    assert check_value(metric, True) is True
    assert check_value(metric, False) is False


def test_the_button_accepts_exactly_the_button_actions():
    assert CATALOGUE[Metric.BUTTON].choices == {a.value for a in ButtonAction}
    for action in ButtonAction:
        assert check_value(Metric.BUTTON, action.value) == action.value


def test_every_device_kind_can_be_recognised_from_what_it_reports():
    assert set(KIND_BY_METRIC.values()) == set(DeviceKind)


def test_units_are_the_ones_documented():
    assert {
        m: unit_of(m)
        for m in (
            Metric.WATER_TOTAL_L,
            Metric.WATER_FLOW_LPM,
            Metric.ENERGY_TOTAL_KWH,
            Metric.POWER_W,
            Metric.HEART_RATE_BPM,
            Metric.SPO2_PCT,
            Metric.BP_SYSTOLIC_MMHG,
            Metric.BODY_TEMP_C,
            Metric.BATTERY_PCT,
        )
    } == {
        Metric.WATER_TOTAL_L: "L",
        Metric.WATER_FLOW_LPM: "L/min",
        Metric.ENERGY_TOTAL_KWH: "kWh",
        Metric.POWER_W: "W",
        Metric.HEART_RATE_BPM: "bpm",
        Metric.SPO2_PCT: "%",
        Metric.BP_SYSTOLIC_MMHG: "mmHg",
        Metric.BODY_TEMP_C: "°C",
        Metric.BATTERY_PCT: "%",
    }


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        (Metric.HEART_RATE_BPM, 900),
        (Metric.SPO2_PCT, 120),
        (Metric.ENERGY_TOTAL_KWH, -1),
        (Metric.POWER_W, 10**400),
        (Metric.POWER_W, float("nan")),
        (Metric.POWER_W, float("inf")),
        (Metric.POWER_W, True),
        (Metric.POWER_W, "1210"),
        (Metric.SMOKE, 1),
        (Metric.SMOKE, None),
        (Metric.BUTTON, "explode"),
        (Metric.BUTTON, 0),
    ],
)
def test_invalid_values_are_refused_with_a_reason_naming_the_metric(metric: Metric, value: object):
    with pytest.raises(InvalidValue, match=metric.value):
        check_value(metric, value)


def test_the_reason_shows_the_possible_range():
    with pytest.raises(InvalidValue, match=r"20\.\.250"):
        check_value(Metric.HEART_RATE_BPM, 900)


def test_a_very_long_value_is_shortened_in_the_reason():
    with pytest.raises(InvalidValue) as caught:
        check_value(Metric.SMOKE, "x" * 10_000)
    assert len(str(caught.value)) < 120


def test_numbers_keep_the_precision_they_came_with():
    assert check_value(Metric.BATTERY_PCT, 51.5) == 51.5
    assert check_value(Metric.BODY_TEMP_C, 36.66) == 36.66
    assert check_value(Metric.ENERGY_TOTAL_KWH, 0.913252) == 0.913252


def test_whole_numbers_become_floats():
    value = check_value(Metric.HEART_RATE_BPM, 72)
    assert (value, type(value)) == (72.0, float)


@pytest.mark.parametrize(
    ("metric", "value", "shown"),
    [
        (Metric.BATTERY_PCT, 51.5, "52 %"),
        (Metric.BATTERY_PCT, 50.5, "51 %"),  # halves round up, as people round
        (Metric.BATTERY_PCT, 14.6, "15 %"),
        (Metric.HEART_RATE_BPM, 72.0, "72 bpm"),
        (Metric.BODY_TEMP_C, 38.65, "38.7 °C"),
        (Metric.ENERGY_TOTAL_KWH, 0.913252, "0.913 kWh"),
        (Metric.ENERGY_TOTAL_KWH, 2.6755, "2.676 kWh"),  # 2.67549999... as a binary float
        (Metric.WATER_TOTAL_L, 123529.0, "123529.0 L"),
        (Metric.WATER_TOTAL_L, 0.30000000000000004, "0.3 L"),
        (Metric.POWER_W, -0.01, "0.0 W"),
    ],
)
def test_values_are_rounded_only_for_people(metric: Metric, value: float, shown: str):
    assert format_value(metric, value) == shown


@pytest.mark.parametrize("metric", [Metric.SMOKE, Metric.BUTTON])
def test_only_numbers_have_a_display_format(metric: Metric):
    with pytest.raises(ValueError, match=metric.value):
        format_value(metric, 1.0)


def test_the_native_format_is_registered():
    assert normaliser_for("native") is native.normalise


def test_an_unknown_format_is_a_key_error_naming_the_known_ones():
    with pytest.raises(KeyError) as caught:
        normaliser_for("nope")
    text = str(caught.value)
    assert "'nope'" in text
    for name in FORMATS:
        assert name in text


GARBAGE = [b"", b"\xff\xfe\x00\x01", b"not json", b"{", b"[[[", b"[1, 2]", b"null", b"42", b'"x"']
SUBTOPICS = ["", "telemetry", "event", "status", "availability", "SENSOR", "LWT", "status/x:0"]


def outcome(normalise: Normaliser, message: DeviceMessage) -> Normalised | Rejected:
    try:
        return normalise(message)
    except Rejected as exc:
        return exc


@pytest.mark.parametrize("format_name", sorted(FORMATS))
def test_every_format_turns_garbage_into_a_rejection_or_nothing(format_name: str):
    normalise = normaliser_for(format_name)
    assert callable(normalise)
    for subtopic in SUBTOPICS:
        for payload in GARBAGE:
            result = outcome(normalise, DeviceMessage("H001", "d", subtopic, payload, RECEIVED))
            if isinstance(result, Rejected):
                assert result.code, (subtopic, payload)
            else:
                assert isinstance(result, Normalised)
                assert result.readings == [], (subtopic, payload)
