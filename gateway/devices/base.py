"""What a normaliser receives and returns, and the helpers every format shares."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from gateway.devices.catalogue import InvalidValue, check_value, unit_of
from gateway.models import DeviceKind, Metric, Reading

# Event times further than this from arrival are refused: a device clock that is a day ahead
# would otherwise push its readings past every "since last night" rule.
MAX_CLOCK_AHEAD = timedelta(days=1)
EARLIEST_TS = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class DeviceMessage:
    """One MQTT message, already matched to a household and device by its source."""

    household_id: str
    device_id: str
    subtopic: str
    """Topic levels after the device id, e.g. "telemetry", "availability", "SENSOR"."""
    payload: bytes
    received_at: datetime
    zone: ZoneInfo | None = None
    """Zone for payload times that carry no offset; None means use the arrival time."""


@dataclass(slots=True)
class Normalised:
    """Readings taken from one message, and what in it could not be used (and why)."""

    readings: list[Reading] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


class Rejected(Exception):
    """The whole message is unusable; `code` is a short label for counters."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


Normaliser = Callable[[DeviceMessage], Normalised]


def decode_json(payload: bytes) -> object:
    """Parse a UTF-8 JSON payload or raise Rejected."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected("invalid_encoding", "payload is not UTF-8 text") from None
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and integers too long to read (over 4300 digits).
        raise Rejected("invalid_json", f"payload is not valid JSON: {str(exc)[:200]}") from None


def event_time(raw: object, message: DeviceMessage) -> datetime:
    """The reading's event time: the payload's own when it names its zone, else arrival time.

    Accepts epoch seconds (int/float) and ISO 8601 text; raises Rejected on nonsense.
    """
    if raw is None:
        return message.received_at
    ts: datetime
    if isinstance(raw, bool):
        raise Rejected("invalid_value", f"ts: expected epoch seconds or ISO 8601, got {raw!r}")
    if isinstance(raw, int | float):
        # Epoch milliseconds are a common device mistake; they are refused, not guessed.
        try:
            ts = datetime.fromtimestamp(float(raw), tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise Rejected("invalid_value", f"ts: {raw!r} is not a possible time") from None
    elif isinstance(raw, str):
        try:
            ts = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
        except ValueError:
            raise Rejected("invalid_value", f"ts: {raw[:40]!r} is not ISO 8601") from None
        if ts.tzinfo is None:
            if message.zone is None:
                return message.received_at
            ts = ts.replace(tzinfo=message.zone)
    else:
        raise Rejected("invalid_value", "ts: expected epoch seconds or ISO 8601 text")
    try:
        ts = ts.astimezone(UTC)
    except OverflowError:
        raise Rejected("invalid_value", f"ts: {raw!r:.40} is not a possible time") from None
    if ts < EARLIEST_TS or ts > message.received_at + MAX_CLOCK_AHEAD:
        raise Rejected("invalid_value", f"ts: {ts.isoformat()} is not a possible event time")
    return ts


def event_time_or_arrival(
    raw: object, message: DeviceMessage, problems: list[str], field: str
) -> datetime:
    """`event_time`, but an unusable stamp becomes a problem and the arrival time is used.

    For stamps from a hub's or device's clock (Tasmota booting at 1970, a Raspberry Pi without
    network time): a wrong clock must not cost the readings themselves.
    """
    try:
        return event_time(raw, message)
    except Rejected as exc:
        problems.append(f"{field}: {exc.reason}; arrival time used")
        return message.received_at


def add_reading(
    out: Normalised,
    message: DeviceMessage,
    kind: DeviceKind | None,
    metric: Metric,
    raw: object,
    ts: datetime,
) -> None:
    """Validate `raw` against the metric catalogue; append a reading or a problem."""
    try:
        value = check_value(metric, raw)
    except InvalidValue as exc:
        out.problems.append(str(exc))
        return
    out.readings.append(
        Reading(
            household_id=message.household_id,
            device_id=message.device_id,
            kind=kind,
            metric=metric,
            value=value,
            unit=unit_of(metric),
            ts=ts,
        )
    )


def online_status(message: DeviceMessage, what: str) -> Normalised:
    """An availability / last-will message: "online" or "offline", plain, as a JSON string, or
    as {"state": ...}; an empty payload (a retained message being cleared) is no reading."""
    text = message.payload.decode("utf-8", errors="replace").strip()
    out = Normalised()
    if not text:
        return out
    word: object = text
    if text.startswith(("{", '"')):
        body = decode_json(message.payload)
        word = body.get("state") if isinstance(body, dict) else body
    if not isinstance(word, str) or word.lower() not in _ONLINE_WORDS:
        raise Rejected("invalid_value", f"{what}: expected online or offline, got {text[:40]!r}")
    add_reading(out, message, None, Metric.ONLINE, _ONLINE_WORDS[word.lower()], message.received_at)
    return out


_ONLINE_WORDS = {"online": True, "offline": False}
