"""The zigbee2mqtt format beyond the golden payloads: vendor words, kinds, times, bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.devices import zigbee2mqtt
from gateway.devices.base import DeviceMessage, Normalised, Rejected
from gateway.devices.catalogue import check_value
from gateway.models import DeviceKind, Metric

RECEIVED_AT = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)


def _message(payload: object, subtopic: str = "", zone: ZoneInfo | None = None) -> DeviceMessage:
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return DeviceMessage("H001", "dev-1", subtopic, raw, RECEIVED_AT, zone)


def _values(result: Normalised) -> dict[Metric, object]:
    return {r.metric: r.value for r in result.readings}


@pytest.mark.parametrize(
    ("action", "button"),
    [
        ("emergency", "sos"),
        ("panic", "sos"),
        ("sos", "sos"),
        ("single", "single"),
        ("click", "single"),
        ("double", "double"),
        ("long", "long"),
        ("hold", "long"),
    ],
)
def test_press_words_become_button_values(action: str, button: str):
    result = zigbee2mqtt.normalise(_message({"action": action}))
    assert _values(result) == {Metric.BUTTON: button}
    assert result.readings[0].kind is DeviceKind.CALL_BUTTON


@pytest.mark.parametrize(
    "action", ["", None, "release", "brightness_up", "triple", "off", "toggle", "SINGLE"]
)
def test_words_that_are_not_a_press_give_no_reading_and_no_problem(action: object):
    result = zigbee2mqtt.normalise(_message({"action": action}))
    assert result.readings == []
    assert result.problems == []


@pytest.mark.parametrize("action", [5, True, ["single"], {"press": "single"}])
def test_an_action_that_is_not_a_word_is_a_problem(action: object):
    result = zigbee2mqtt.normalise(_message({"action": action, "battery": 80}))
    assert _values(result) == {Metric.BATTERY_PCT: 80.0}
    assert len(result.problems) == 1
    assert result.problems[0].startswith("action:")


@pytest.mark.parametrize(
    ("payload", "fall"),
    [
        ({"fall_down_status": "fall"}, True),
        ({"fall_down_status": "none"}, False),
        ({"fall_status": "fall_alarm"}, True),
        ({"fall_status": "normal"}, False),
    ],
)
def test_fall_radar_words(payload: dict[str, object], fall: bool):
    result = zigbee2mqtt.normalise(_message(payload))
    assert _values(result) == {Metric.FALL: fall}
    assert result.readings[0].kind is DeviceKind.FALL_SENSOR


@pytest.mark.parametrize(
    "payload",
    [
        {"fall_down_status": "maybe_fall"},
        {"fall_status": "fall_warning"},
        {"fall_status": "unknown"},
    ],
)
def test_a_maybe_fall_is_neither_a_fall_nor_an_all_clear(payload: dict[str, object]):
    result = zigbee2mqtt.normalise(_message(payload))
    assert result.readings == []
    assert result.problems == []


def test_an_unknown_fall_word_is_a_problem_not_a_guess():
    result = zigbee2mqtt.normalise(_message({"fall_status": "lying", "occupancy": True}))
    assert _values(result) == {Metric.PRESENCE: True}
    assert len(result.problems) == 1


@pytest.mark.parametrize(("contact", "door_open"), [(True, False), (False, True)])
def test_contact_means_the_door_is_closed(contact: bool, door_open: bool):
    result = zigbee2mqtt.normalise(_message({"contact": contact}))
    assert _values(result) == {Metric.DOOR_OPEN: door_open}
    assert result.readings[0].kind is DeviceKind.DOOR_SENSOR


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"presence": True, "fall_down_status": "none"}, DeviceKind.FALL_SENSOR),
        ({"smoke": False, "gas": False}, DeviceKind.GAS_DETECTOR),
        ({"action": "single_left", "power": 3.5, "energy": 0.2}, DeviceKind.POWER_METER),
        ({"presence": True, "linkquality": 90}, DeviceKind.MOTION_SENSOR),
        ({"occupancy": None, "battery": 90}, DeviceKind.MOTION_SENSOR),
        ({"action": "", "battery": 90}, DeviceKind.CALL_BUTTON),
        ({"battery": 90, "tamper": False}, None),
    ],
)
def test_kind_comes_from_the_field_that_says_most(
    payload: dict[str, object], kind: DeviceKind | None
):
    result = zigbee2mqtt.normalise(_message(payload))
    assert result.readings
    assert {r.kind for r in result.readings} == {kind}


def test_null_values_are_not_yet_known_not_problems():
    payload = {"battery": None, "smoke": None, "linkquality": None, "power": None}
    result = zigbee2mqtt.normalise(_message(payload))
    assert result == Normalised()


@pytest.mark.parametrize(
    ("payload", "metric"),
    [
        ({"battery": "80"}, "battery_pct"),
        ({"battery": 300}, "battery_pct"),
        ({"power": True}, "power_w"),
        ({"power": -12.5}, "power_w"),
        ({"energy": "1.5 kWh"}, "energy_total_kwh"),
        ({"smoke": "yes"}, "smoke"),
        ({"contact": "open"}, "contact"),
        ({"linkquality": {"lqi": 40}}, "link_quality"),
    ],
)
def test_wrong_types_and_impossible_values_are_problems(payload: dict[str, object], metric: str):
    result = zigbee2mqtt.normalise(_message(payload))
    assert result.readings == []
    assert len(result.problems) == 1
    assert metric in result.problems[0]


def test_a_half_percent_battery_stays_as_reported():
    # Zigbee reports battery percentage remaining in half percents: 103 is 51.5 %.
    assert _values(zigbee2mqtt.normalise(_message({"battery": 51.5}))) == {Metric.BATTERY_PCT: 51.5}


def test_energy_is_already_kilowatt_hours():
    result = zigbee2mqtt.normalise(_message({"energy": 5321.4449, "power": 1210}))
    assert _values(result) == {Metric.ENERGY_TOTAL_KWH: 5321.4449, Metric.POWER_W: 1210.0}


@pytest.mark.parametrize(
    ("last_seen", "ts"),
    [
        (1764390000123, datetime(2025, 11, 29, 4, 20, 0, 123000, tzinfo=UTC)),
        ("2026-11-29T12:59:58+08:00", datetime(2026, 11, 29, 4, 59, 58, tzinfo=UTC)),
        ("2026-11-29T04:59:58.941Z", datetime(2026, 11, 29, 4, 59, 58, 941000, tzinfo=UTC)),
        ("2026-11-29T12:59:58+0800", datetime(2026, 11, 29, 4, 59, 58, tzinfo=UTC)),
    ],
)
def test_last_seen_is_the_event_time(last_seen: object, ts: datetime):
    result = zigbee2mqtt.normalise(_message({"smoke": True, "last_seen": last_seen}))
    assert result.readings[0].ts == ts
    assert result.problems == []


def test_last_seen_without_an_offset_needs_the_source_zone():
    payload = {"smoke": True, "last_seen": "2026-11-29T12:59:58"}
    without = zigbee2mqtt.normalise(_message(payload))
    with_zone = zigbee2mqtt.normalise(_message(payload, zone=ZoneInfo("Asia/Shanghai")))
    assert without.readings[0].ts == RECEIVED_AT
    assert with_zone.readings[0].ts == datetime(2026, 11, 29, 4, 59, 58, tzinfo=UTC)


@pytest.mark.parametrize(
    "last_seen",
    [
        "5 minutes ago",
        True,
        {"at": 1},
        86400,  # epoch seconds where milliseconds are due: 1970
        int((RECEIVED_AT + timedelta(days=2)).timestamp() * 1000),
        10**400,
        "2026-13-45T00:00:00Z",
    ],
)
def test_an_unusable_last_seen_keeps_the_reading_at_arrival_time(last_seen: object):
    result = zigbee2mqtt.normalise(_message({"smoke": True, "last_seen": last_seen}))
    assert _values(result) == {Metric.SMOKE: True}
    assert result.readings[0].ts == RECEIVED_AT
    assert len(result.problems) == 1
    assert result.problems[0].startswith("last_seen:")


@pytest.mark.parametrize(
    ("payload", "online"),
    [
        (b'{"state":"online"}', True),
        (b'{"state": "offline"}', False),
        (b"online", True),
        (b"offline\n", False),
        (b'"online"', True),
        (b"Online", True),
    ],
)
def test_availability(payload: bytes, online: bool):
    result = zigbee2mqtt.normalise(_message(payload, subtopic="availability"))
    assert _values(result) == {Metric.ONLINE: online}
    assert result.readings[0].kind is None
    assert result.readings[0].ts == RECEIVED_AT


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b'{"state":"away"}', "invalid_value"),
        (b'{"state":1}', "invalid_value"),
        (b"{}", "invalid_value"),
        (b"true", "invalid_value"),
        (b"maybe", "invalid_value"),
        (b'{"state":', "invalid_json"),
    ],
)
def test_availability_that_is_neither_online_nor_offline_is_rejected(payload: bytes, code: str):
    with pytest.raises(Rejected) as caught:
        zigbee2mqtt.normalise(_message(payload, subtopic="availability"))
    assert caught.value.code == code


@pytest.mark.parametrize("subtopic", ["", "availability"])
def test_a_cleared_retained_message_is_not_an_error(subtopic: str):
    assert zigbee2mqtt.normalise(_message(b"", subtopic=subtopic)) == Normalised()
    assert zigbee2mqtt.normalise(_message(b"  ", subtopic=subtopic)) == Normalised()


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"[1, 2]", "invalid_payload"),
        (b'"smoke"', "invalid_payload"),
        (b"42", "invalid_payload"),
        (b"null", "invalid_payload"),
        (b"{smoke: true}", "invalid_json"),
        (b"\xff\xfe", "invalid_encoding"),
    ],
)
def test_a_state_that_is_not_a_json_object_is_rejected(payload: bytes, code: str):
    with pytest.raises(Rejected) as caught:
        zigbee2mqtt.normalise(_message(payload))
    assert caught.value.code == code


@pytest.mark.parametrize("subtopic", ["set", "get", "set/state"])
def test_commands_to_the_device_are_ignored(subtopic: str):
    assert zigbee2mqtt.normalise(_message({"state": "ON"}, subtopic=subtopic)) == Normalised()


def test_an_empty_object_is_nothing_to_report():
    assert zigbee2mqtt.normalise(_message({})) == Normalised()


_FIELD_NAMES = [f.path for f in zigbee2mqtt.FIELDS] + ["last_seen", "state", "device"]
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["emergency", "fall", "maybe_fall", "normal", "fall_alarm", "online"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(body=st.dictionaries(st.sampled_from(_FIELD_NAMES) | st.text(max_size=8), _json))
def test_any_json_object_gives_valid_readings_or_problems_never_an_exception(
    body: dict[str, object],
):
    result = zigbee2mqtt.normalise(_message(body))
    for reading in result.readings:
        assert check_value(reading.metric, reading.value) == reading.value
        assert reading.ts.tzinfo is not None


@settings(max_examples=300)
@given(payload=st.binary(max_size=64), subtopic=st.sampled_from(["", "availability", "set"]))
def test_any_bytes_are_read_or_rejected(payload: bytes, subtopic: str):
    try:
        result = zigbee2mqtt.normalise(_message(payload, subtopic=subtopic))
    except Rejected:
        return
    for reading in result.readings:
        assert check_value(reading.metric, reading.value) == reading.value
