"""Whatever a device publishes, the native format gives valid readings or a Rejected, nothing else.

A normaliser that raises anything else would be a crash in the ingest loop on one bad message.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.devices import native
from gateway.devices.base import EARLIEST_TS, MAX_CLOCK_AHEAD, DeviceMessage, Normalised, Rejected
from gateway.devices.catalogue import check_value, unit_of
from gateway.models import ButtonAction, DeviceKind, Metric

RECEIVED = datetime(2026, 11, 29, 5, 0, tzinfo=UTC)
FUZZ = settings(max_examples=300, deadline=None)

METRIC_NAMES = [m.value for m in Metric]
WORDS = [
    *(k.value for k in DeviceKind),
    *(a.value for a in ButtonAction),
    "fall",
    "online",
    "offline",
    "OFFLINE",
]

subtopics = st.sampled_from(["telemetry", "event", "status"])
zones = st.sampled_from(
    [None, ZoneInfo("Asia/Shanghai"), ZoneInfo("UTC"), ZoneInfo("Pacific/Kiritimati")]
)

fixed_offsets = st.timedeltas(
    min_value=-timedelta(hours=23, minutes=59), max_value=timedelta(hours=23, minutes=59)
).map(lambda offset: timezone(timedelta(minutes=offset // timedelta(minutes=1))))
any_datetimes = st.datetimes(timezones=st.none() | st.just(UTC) | fixed_offsets)
# The first and last days of the calendar, where converting to UTC leaves it.
edge_datetimes = st.builds(
    lambda moment, zone: moment.replace(tzinfo=zone),
    st.datetimes(max_value=datetime(1, 1, 2)) | st.datetimes(min_value=datetime(9999, 12, 31)),
    st.none() | fixed_offsets,
)
recent_datetimes = st.datetimes(
    min_value=datetime(1999, 12, 31), max_value=datetime(2026, 12, 1), timezones=st.just(UTC)
)
timestamps = st.one_of(
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),
    st.floats(min_value=9e8, max_value=1.8e9),
    any_datetimes.map(datetime.isoformat),
    edge_datetimes.map(datetime.isoformat),
    recent_datetimes.map(datetime.isoformat),
    recent_datetimes.map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.text(max_size=30),
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(),  # NaN and ±Infinity too: Python's json writes and reads them
    st.floats(min_value=-10, max_value=60_000),
    st.text(),
    st.sampled_from(WORDS),
)
keys = st.sampled_from([*METRIC_NAMES, "kind", "ts", "event", "state"]) | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=8,
)
# A metric's value is only ever checked at the top level: a shallow container is enough there.
field_values = scalars | st.lists(scalars, max_size=3) | st.dictionaries(keys, scalars, max_size=3)
native_objects = st.builds(
    lambda metrics, extra: {**metrics, **extra},
    st.dictionaries(st.sampled_from(METRIC_NAMES), field_values, max_size=6),
    st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(WORDS) | field_values,
            "ts": timestamps | field_values,
            "event": st.sampled_from(WORDS) | field_values,
            "state": st.sampled_from(WORDS) | field_values,
        },
    ),
)


def encode(value: object, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode()


def outcome(message: DeviceMessage) -> Normalised | Rejected:
    try:
        return native.normalise(message)
    except Rejected as exc:
        return exc


def assert_readings_or_rejected(payload: bytes, subtopic: str, zone: ZoneInfo | None) -> None:
    result = outcome(DeviceMessage("H001", "dev-1", subtopic, payload, RECEIVED, zone))
    if isinstance(result, Rejected):
        assert result.code
        return
    assert isinstance(result, Normalised)
    for reading in result.readings:
        assert check_value(reading.metric, reading.value) == reading.value
        assert reading.unit == unit_of(reading.metric)
        assert reading.ts.utcoffset() == timedelta(0)
        assert EARLIEST_TS <= reading.ts <= RECEIVED + MAX_CLOCK_AHEAD
        assert (reading.household_id, reading.device_id) == ("H001", "dev-1")
    assert all(isinstance(problem, str) for problem in result.problems)


@FUZZ
@given(payload=st.binary(max_size=300), subtopic=subtopics, zone=zones)
def test_arbitrary_bytes(payload: bytes, subtopic: str, zone: ZoneInfo | None):
    assert_readings_or_rejected(payload, subtopic, zone)


@FUZZ
@given(
    value=native_objects | json_values,
    subtopic=subtopics,
    zone=zones,
    ascii_only=st.booleans(),
)
def test_arbitrary_json(value: object, subtopic: str, zone: ZoneInfo | None, ascii_only: bool):
    assert_readings_or_rejected(encode(value, ascii_only), subtopic, zone)


@FUZZ
@given(
    key=st.sampled_from([*METRIC_NAMES, "kind", "ts", "event", "state"]),
    digits=st.integers(min_value=1, max_value=6000),
    depth=st.integers(min_value=0, max_value=1500),
    subtopic=subtopics,
)
def test_huge_numbers_and_deep_nesting(key: str, digits: int, depth: int, subtopic: str):
    # Beyond what json.dumps will write: integer literals of thousands of digits, and arrays
    # nested deeper than the interpreter's recursion limit.
    number = "9" * digits
    payload = f'{{"smoke": true, "{key}": {"[" * depth}{number}{"]" * depth}}}'.encode()
    assert_readings_or_rejected(payload, subtopic, None)


@FUZZ
@given(ts=edge_datetimes.map(datetime.isoformat) | timestamps | field_values, zone=zones)
def test_arbitrary_event_times(ts: object, zone: ZoneInfo | None):
    assert_readings_or_rejected(encode({"power_w": 100, "ts": ts}, True), "telemetry", zone)
