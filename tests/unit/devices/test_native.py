"""The project's own JSON format (DESIGN.md §4): what devices send and the readings it becomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from gateway.devices import native
from gateway.devices.base import DeviceMessage, Normalised, Rejected
from gateway.models import DeviceKind, Metric

RECEIVED = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
SHANGHAI = ZoneInfo("Asia/Shanghai")


def message(payload: object, subtopic: str, zone: ZoneInfo | None) -> DeviceMessage:
    """A message from H001's dev-1; bytes and str payloads are sent as is, anything else as JSON."""
    if isinstance(payload, bytes):
        raw = payload
    elif isinstance(payload, str):
        raw = payload.encode()
    else:
        raw = json.dumps(payload).encode()
    return DeviceMessage("H001", "dev-1", subtopic, raw, RECEIVED, zone)


def normalise(
    payload: object, subtopic: str = "telemetry", *, zone: ZoneInfo | None = None
) -> Normalised:
    return native.normalise(message(payload, subtopic, zone))


def rejection(
    payload: object, subtopic: str = "telemetry", *, zone: ZoneInfo | None = None
) -> Rejected:
    with pytest.raises(Rejected) as caught:
        normalise(payload, subtopic, zone=zone)
    return caught.value


def rows(result: Normalised) -> list[tuple[object, ...]]:
    """(metric, value, unit, kind, ts) of each reading, in payload order."""
    return [(r.metric, r.value, r.unit, r.kind, r.ts) for r in result.readings]


def values(result: Normalised) -> dict[Metric, object]:
    return {r.metric: r.value for r in result.readings}


# --- DESIGN.md §4 examples ----------------------------------------------------------------------

EPOCH_1764400000 = datetime(2025, 11, 29, 7, 6, 40, tzinfo=UTC)


@pytest.mark.parametrize(
    ("subtopic", "payload", "expected"),
    [
        pytest.param(
            "telemetry",
            {"kind": "smoke_detector", "ts": 1764400000, "smoke": False, "battery_pct": 91},
            [
                (Metric.SMOKE, False, None, DeviceKind.SMOKE_DETECTOR, EPOCH_1764400000),
                (Metric.BATTERY_PCT, 91.0, "%", DeviceKind.SMOKE_DETECTOR, EPOCH_1764400000),
            ],
            id="smoke",
        ),
        pytest.param(
            "telemetry",
            {"kind": "water_meter", "water_total_l": 183402.5},
            [(Metric.WATER_TOTAL_L, 183402.5, "L", DeviceKind.WATER_METER, RECEIVED)],
            id="water",
        ),
        pytest.param(
            "telemetry",
            {"kind": "power_meter", "power_w": 1210.0, "energy_total_kwh": 5321.44},
            [
                (Metric.POWER_W, 1210.0, "W", DeviceKind.POWER_METER, RECEIVED),
                (Metric.ENERGY_TOTAL_KWH, 5321.44, "kWh", DeviceKind.POWER_METER, RECEIVED),
            ],
            id="power",
        ),
        pytest.param(
            "telemetry",
            {
                "kind": "health_monitor",
                "heart_rate_bpm": 72,
                "spo2_pct": 97,
                "bp_systolic_mmhg": 135,
                "bp_diastolic_mmhg": 85,
            },
            [
                (Metric.HEART_RATE_BPM, 72.0, "bpm", DeviceKind.HEALTH_MONITOR, RECEIVED),
                (Metric.SPO2_PCT, 97.0, "%", DeviceKind.HEALTH_MONITOR, RECEIVED),
                (Metric.BP_SYSTOLIC_MMHG, 135.0, "mmHg", DeviceKind.HEALTH_MONITOR, RECEIVED),
                (Metric.BP_DIASTOLIC_MMHG, 85.0, "mmHg", DeviceKind.HEALTH_MONITOR, RECEIVED),
            ],
            id="health",
        ),
        pytest.param(
            "event",
            {"kind": "call_button", "event": "sos"},
            [(Metric.BUTTON, "sos", None, DeviceKind.CALL_BUTTON, RECEIVED)],
            id="sos",
        ),
        pytest.param(
            "status", "online", [(Metric.ONLINE, True, None, None, RECEIVED)], id="online"
        ),
        pytest.param(
            "status", "offline", [(Metric.ONLINE, False, None, None, RECEIVED)], id="offline"
        ),
    ],
)
def test_design_examples_give_their_readings(subtopic: str, payload: object, expected: list):
    result = normalise(payload, subtopic)
    assert rows(result) == expected
    assert result.problems == []


def test_readings_belong_to_the_household_and_device_of_the_topic():
    result = native.normalise(
        DeviceMessage("H042", "hm-7", "telemetry", b'{"heart_rate_bpm": 70}', RECEIVED)
    )
    (r,) = result.readings
    assert (r.household_id, r.device_id) == ("H042", "hm-7")


def test_numbers_come_out_as_floats_even_when_sent_as_integers():
    result = normalise({"battery_pct": 91, "power_w": 0})
    assert all(type(r.value) is float for r in result.readings)


def test_fields_that_are_not_metrics_are_ignored_silently():
    result = normalise({"smoke": False, "firmware": "1.2.3", "rssi": -70})
    assert values(result) == {Metric.SMOKE: False}
    assert result.problems == []


# --- event time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        pytest.param(1764400000, EPOCH_1764400000, id="epoch-int"),
        pytest.param(
            1764400000.25, EPOCH_1764400000 + timedelta(milliseconds=250), id="epoch-float"
        ),
        pytest.param(
            "2026-11-29T13:52:00+08:00", datetime(2026, 11, 29, 5, 52, tzinfo=UTC), id="offset"
        ),
        pytest.param("2026-11-29T05:52:00Z", datetime(2026, 11, 29, 5, 52, tzinfo=UTC), id="Z"),
        pytest.param(
            "2026-11-28T23:52:00-06:00", datetime(2026, 11, 29, 5, 52, tzinfo=UTC), id="negative"
        ),
        pytest.param("2026-11-29T13:52:00", RECEIVED, id="naive-means-arrival"),
        pytest.param(None, RECEIVED, id="null-means-arrival"),
    ],
)
def test_event_time_is_the_payloads_own_only_when_it_names_its_zone(ts: object, expected):
    (r,) = normalise({"power_w": 5.0, "ts": ts}).readings
    assert r.ts == expected
    assert r.ts.utcoffset() == timedelta(0)


def test_missing_ts_means_arrival_time():
    (r,) = normalise({"power_w": 5.0}).readings
    assert r.ts == RECEIVED


def test_naive_time_is_read_in_the_zone_the_source_is_configured_with():
    (r,) = normalise({"power_w": 5.0, "ts": "2026-11-29T13:52:00"}, zone=SHANGHAI).readings
    assert r.ts == datetime(2026, 11, 29, 5, 52, tzinfo=UTC)
    assert r.ts.utcoffset() == timedelta(0)


def test_a_time_with_an_offset_ignores_the_sources_zone():
    (r,) = normalise({"power_w": 5.0, "ts": "2026-11-29T05:52:00Z"}, zone=SHANGHAI).readings
    assert r.ts == datetime(2026, 11, 29, 5, 52, tzinfo=UTC)


def test_every_reading_of_a_message_shares_its_event_time():
    result = normalise({"ts": 1764400000, "power_w": 1.0, "energy_total_kwh": 2.0})
    assert {r.ts for r in result.readings} == {EPOCH_1764400000}


def test_a_device_clock_slightly_ahead_is_tolerated():
    ahead = RECEIVED + timedelta(hours=23)
    (r,) = normalise({"power_w": 5.0, "ts": ahead.isoformat()}).readings
    assert r.ts == ahead


def test_the_first_second_of_2000_is_accepted():
    (r,) = normalise({"power_w": 5.0, "ts": 946684800}).readings
    assert r.ts == datetime(2000, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param((RECEIVED + timedelta(days=1, seconds=1)).isoformat(), id="a-day-ahead"),
        pytest.param((RECEIVED + timedelta(days=1, seconds=1)).timestamp(), id="epoch-ahead"),
        pytest.param("1999-12-31T23:59:59Z", id="before-2000"),
        pytest.param(0, id="epoch-zero"),
        pytest.param(-1, id="negative-epoch"),
        pytest.param(1764400000000, id="epoch-milliseconds"),
        pytest.param(10**400, id="huge-int"),
        pytest.param("yesterday", id="words"),
        pytest.param("", id="empty"),
        pytest.param("29/11/2026 13:52", id="not-iso"),
        pytest.param(True, id="bool"),
        pytest.param([1764400000], id="list"),
        pytest.param({"s": 1764400000}, id="object"),
    ],
)
def test_an_impossible_or_unreadable_time_rejects_the_message(ts: object):
    rejected = rejection({"power_w": 5.0, "ts": ts})
    assert rejected.code == "invalid_value"
    assert "ts" in rejected.reason


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_epoch_times_are_rejected(literal: str):
    # Python's json module accepts these non-standard literals, so devices can send them.
    assert rejection(f'{{"power_w": 5.0, "ts": {literal}}}').code == "invalid_value"


@pytest.mark.parametrize(
    "ts",
    [
        pytest.param("9999-12-31T23:59:59-23:59", id="after-year-9999-in-utc"),
        pytest.param("0001-01-01T00:00:00+23:59", id="before-year-1-in-utc"),
    ],
)
def test_times_at_the_edge_of_the_calendar_are_rejected_not_crashing(ts: str):
    # BUG (gateway/devices/base.py, event_time): ts.astimezone(UTC) raises OverflowError.
    assert rejection({"power_w": 5.0, "ts": ts}).code == "invalid_value"


def test_a_naive_time_at_the_edge_of_the_calendar_in_the_sources_zone_is_rejected():
    # BUG (gateway/devices/base.py, event_time): ts.astimezone(UTC) raises OverflowError.
    rejected = rejection({"power_w": 5.0, "ts": "0001-01-01T00:00:00"}, zone=SHANGHAI)
    assert rejected.code == "invalid_value"


# --- kind ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"smoke": True}, DeviceKind.SMOKE_DETECTOR),
        ({"gas_leak": False}, DeviceKind.GAS_DETECTOR),
        ({"water_leak": False}, DeviceKind.WATER_LEAK_SENSOR),
        ({"water_total_l": 10.0}, DeviceKind.WATER_METER),
        ({"water_flow_lpm": 1.5}, DeviceKind.WATER_METER),
        ({"power_w": 10.0}, DeviceKind.POWER_METER),
        ({"energy_total_kwh": 10.0}, DeviceKind.POWER_METER),
        ({"heart_rate_bpm": 70}, DeviceKind.HEALTH_MONITOR),
        ({"body_temp_c": 36.5}, DeviceKind.HEALTH_MONITOR),
        ({"fall": True}, DeviceKind.FALL_SENSOR),
        ({"presence": True}, DeviceKind.MOTION_SENSOR),
        ({"door_open": True}, DeviceKind.DOOR_SENSOR),
        ({"event": "sos"}, DeviceKind.CALL_BUTTON),
        ({"event": "fall"}, DeviceKind.FALL_SENSOR),
        ({"kind": None, "smoke": True}, DeviceKind.SMOKE_DETECTOR),
    ],
)
def test_kind_is_inferred_from_the_metrics_when_omitted(payload: dict, kind: DeviceKind):
    result = normalise(payload)
    assert {r.kind for r in result.readings} == {kind}


def test_an_inferred_kind_applies_to_the_devices_other_readings_too():
    result = normalise({"battery_pct": 40, "door_open": True})
    assert {r.metric: r.kind for r in result.readings} == {
        Metric.BATTERY_PCT: DeviceKind.DOOR_SENSOR,
        Metric.DOOR_OPEN: DeviceKind.DOOR_SENSOR,
    }


def test_metrics_any_device_may_send_do_not_guess_a_kind():
    result = normalise({"battery_pct": 40, "battery_low": False, "tamper": False})
    assert {r.kind for r in result.readings} == {None}


def test_a_declared_kind_wins_over_inference():
    result = normalise({"kind": "health_monitor", "fall": True})
    assert [(r.metric, r.kind) for r in result.readings] == [
        (Metric.FALL, DeviceKind.HEALTH_MONITOR)
    ]


@pytest.mark.parametrize("kind", ["toaster", "Smoke_Detector", "", 5, True, ["smoke_detector"]])
def test_an_unknown_kind_rejects_the_message(kind: object):
    assert rejection({"kind": kind, "smoke": True}).code == "unknown_kind"


# --- events -------------------------------------------------------------------------------------


@pytest.mark.parametrize("press", ["sos", "single", "double", "long", "cancel"])
def test_button_events_become_button_readings(press: str):
    (r,) = normalise({"event": press}, "event").readings
    assert (r.metric, r.value, r.kind) == (Metric.BUTTON, press, DeviceKind.CALL_BUTTON)


def test_a_fall_event_is_a_fall_reading():
    (r,) = normalise({"kind": "fall_sensor", "event": "fall"}, "event").readings
    assert (r.metric, r.value, r.kind) == (Metric.FALL, True, DeviceKind.FALL_SENSOR)


def test_an_event_can_come_with_other_metrics():
    result = normalise({"event": "sos", "battery_pct": 80}, "event")
    assert values(result) == {Metric.BUTTON: "sos", Metric.BATTERY_PCT: 80.0}


@pytest.mark.parametrize("event", ["explode", "", "SOS ", 1, None, True, ["sos"], {"a": "sos"}])
def test_an_unknown_event_rejects_the_message(event: object):
    rejected = rejection({"event": event, "battery_pct": 80}, "event")
    assert rejected.code == "invalid_value"
    assert "event" in rejected.reason


def test_the_button_metric_may_also_be_sent_directly():
    assert values(normalise({"button": "double"})) == {Metric.BUTTON: "double"}


# --- status (last will) -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b"online", True),
        (b"offline", False),
        (b"offline\n", False),
        (b"  Online ", True),
        (b"OFFLINE", False),
        (b'"online"', True),
        (b'"offline"', False),
        (b'{"state": "online"}', True),
        (b'{"state": "offline"}', False),
        (b'{"state": "offline", "since": 1764400000}', False),
    ],
)
def test_status_messages_say_whether_the_device_is_online(payload: bytes, online: bool):
    result = normalise(payload, "status")
    assert rows(result) == [(Metric.ONLINE, online, None, None, RECEIVED)]
    assert result.problems == []


@pytest.mark.parametrize(
    "payload",
    [b"maybe", b"1", b"true", b'{"state": 1}', b'{"status": "online"}', b'["online"]'],
)
def test_a_status_that_is_neither_online_nor_offline_is_rejected(payload: bytes):
    assert rejection(payload, "status").code == "invalid_value"


def test_an_empty_status_clears_the_retained_message_and_says_nothing():
    result = normalise(b"", "status")
    assert (result.readings, result.problems) == ([], [])


def test_a_broken_json_status_is_invalid_json():
    assert rejection(b'{"state": "offl', "status").code == "invalid_json"


def test_a_status_that_is_not_utf8_is_rejected():
    rejection(b"\xff\xfeoffline", "status")
    assert rejection(b'{"state": "\xff"}', "status").code == "invalid_encoding"


# --- whole-message rejections -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"not json", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"smoke": true', "invalid_json"),
        (b"{'smoke': true}", "invalid_json"),
        (b"\xff\xfe{}", "invalid_encoding"),
        (b'{"smoke": "\xe9"}', "invalid_encoding"),
        (b'[{"smoke": true}]', "invalid_payload"),
        (b'"smoke"', "invalid_payload"),
        (b"42", "invalid_payload"),
        (b"null", "invalid_payload"),
        (b"{}", "no_metrics"),
        (b'{"kind": "smoke_detector"}', "no_metrics"),
        (b'{"kind": "smoke_detector", "ts": 1764400000}', "no_metrics"),
        (b'{"colour": "red", "Smoke": true}', "no_metrics"),
        (b'{"kind": "toaster", "smoke": true}', "unknown_kind"),
    ],
)
def test_unusable_messages_are_rejected_with_a_code(payload: bytes, code: str):
    rejected = rejection(payload)
    assert rejected.code == code
    assert rejected.reason
    assert str(rejected) == rejected.reason


def test_deeply_nested_json_is_rejected_not_crashing():
    assert rejection(b"[" * 100_000 + b"]" * 100_000).code == "invalid_json"


def test_a_number_too_long_to_read_is_rejected_not_crashing():
    # BUG (gateway/devices/base.py, decode_json): Python refuses int literals of more than
    # 4300 digits with a plain ValueError, which decode_json does not catch.
    payload = b'{"smoke": true, "power_w": ' + b"9" * 5000 + b"}"
    with pytest.raises(Rejected):
        normalise(payload)


# --- bad fields among good ones -----------------------------------------------------------------


def test_a_bad_field_keeps_the_good_readings_and_reports_a_problem():
    result = normalise({"smoke": True, "battery_pct": 500})
    assert values(result) == {Metric.SMOKE: True}
    (problem,) = result.problems
    assert "battery_pct" in problem


def test_every_bad_field_is_reported():
    result = normalise({"power_w": "high", "energy_total_kwh": -1, "battery_pct": 50})
    assert values(result) == {Metric.BATTERY_PCT: 50.0}
    assert len(result.problems) == 2
    assert any("power_w" in p for p in result.problems)
    assert any("energy_total_kwh" in p for p in result.problems)


def test_a_message_whose_only_metric_is_bad_has_a_problem_and_no_reading():
    result = normalise({"smoke": "yes"})
    assert result.readings == []
    assert len(result.problems) == 1


@pytest.mark.parametrize(
    ("metric", "raw"),
    [
        ("heart_rate_bpm", "900"),
        ("heart_rate_bpm", "19"),
        ("heart_rate_bpm", "0"),
        ("spo2_pct", "120"),
        ("spo2_pct", "49"),
        ("bp_systolic_mmhg", "300"),
        ("bp_diastolic_mmhg", "10"),
        ("body_temp_c", "50"),
        ("body_temp_c", "20.5"),
        ("energy_total_kwh", "-0.001"),
        ("water_total_l", "-1"),
        ("water_total_l", "1e11"),
        ("water_flow_lpm", "500"),
        ("power_w", "-5"),
        ("power_w", "60000"),
        ("battery_pct", "101"),
        ("battery_pct", "-1"),
        ("power_w", "1" + "0" * 400),
        ("power_w", "1e400"),
        ("power_w", "NaN"),
        ("power_w", "Infinity"),
        ("energy_total_kwh", "-Infinity"),
    ],
)
def test_impossible_values_are_refused(metric: str, raw: str):
    result = normalise(f'{{"{metric}": {raw}, "tamper": false}}')
    assert values(result) == {Metric.TAMPER: False}
    (problem,) = result.problems
    assert metric in problem


@pytest.mark.parametrize(
    ("metric", "value"),
    [
        ("heart_rate_bpm", 20),
        ("heart_rate_bpm", 250),
        ("spo2_pct", 100),
        ("battery_pct", 0),
        ("battery_pct", 100),
        ("energy_total_kwh", 0),
        ("power_w", 0),
        ("body_temp_c", 30),
        ("body_temp_c", 44),
    ],
)
def test_values_at_the_limits_of_the_possible_are_kept(metric: str, value: float):
    assert values(normalise({metric: value})) == {Metric(metric): value}


@pytest.mark.parametrize(
    ("metric", "raw"),
    [
        ("power_w", True),
        ("battery_pct", False),
        ("heart_rate_bpm", "72"),
        ("power_w", None),
        ("power_w", [1210]),
        ("power_w", {"value": 1210}),
        ("smoke", 1),
        ("smoke", 0),
        ("smoke", "true"),
        ("door_open", None),
        ("fall", "yes"),
        ("online", 1.0),
        ("button", "explode"),
        ("button", 1),
        ("button", True),
    ],
)
def test_values_of_the_wrong_type_are_refused(metric: str, raw: object):
    result = normalise({metric: raw, "tamper": False})
    assert values(result) == {Metric.TAMPER: False}
    (problem,) = result.problems
    assert metric in problem


@pytest.mark.parametrize(
    ("metric", "sent"),
    [
        ("heart_rate_bpm", 72.4),
        ("spo2_pct", 96.6),
        ("body_temp_c", 36.66),
        ("energy_total_kwh", 5321.4444),
        ("water_total_l", 183402.56),
        ("water_flow_lpm", 1.234),
        ("power_w", 1210.06),
        ("battery_pct", 51.5),
    ],
)
def test_values_keep_the_precision_the_device_sent(metric: str, sent: float):
    assert values(normalise({metric: sent})) == {Metric(metric): sent}


def test_whole_numbers_become_floats():
    reading = normalise({"heart_rate_bpm": 72}).readings[0]
    assert reading.value == 72.0
    assert type(reading.value) is float
