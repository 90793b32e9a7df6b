"""The project's own JSON format (DESIGN.md §4): metric names as keys.

homes/H001/smoke-1/telemetry  {"kind":"smoke_detector","ts":1764400000,"smoke":false}
homes/H001/btn-1/event        {"kind":"call_button","event":"sos"}
homes/H001/smoke-1/status     "online" | "offline"
"""

from __future__ import annotations

from gateway.devices.base import (
    DeviceMessage,
    Normalised,
    Rejected,
    add_reading,
    decode_json,
    event_time,
    online_status,
)
from gateway.devices.catalogue import KIND_BY_METRIC
from gateway.models import ButtonAction, DeviceKind, Metric

_METRICS = {m.value: m for m in Metric}
_KINDS = {k.value: k for k in DeviceKind}
_BUTTON_EVENTS = frozenset(a.value for a in ButtonAction)


def normalise(message: DeviceMessage) -> Normalised:
    """Turn one native telemetry, event or status message into canonical readings."""
    if message.subtopic == "status":
        return online_status(message, "status")
    body = decode_json(message.payload)
    if not isinstance(body, dict):
        raise Rejected("invalid_payload", "payload must be a JSON object")
    kind = _kind(body.get("kind"))
    ts = event_time(body.get("ts"), message)
    out = Normalised()
    fields: list[tuple[Metric, object]] = [
        (_METRICS[key], value) for key, value in body.items() if key in _METRICS
    ]
    if "event" in body:
        fields.append(_event(body["event"]))
    if not fields:
        raise Rejected("no_metrics", "payload has no known metric")
    if kind is None:
        kind = next((KIND_BY_METRIC[m] for m, _ in fields if m in KIND_BY_METRIC), None)
    for metric, raw in fields:
        add_reading(out, message, kind, metric, raw, ts)
    return out


def _kind(raw: object) -> DeviceKind | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or raw not in _KINDS:
        raise Rejected("unknown_kind", f"kind: {str(raw)[:40]!r} is not a known device kind")
    return _KINDS[raw]


def _event(raw: object) -> tuple[Metric, object]:
    if raw == "fall":
        return Metric.FALL, True
    if isinstance(raw, str) and raw in _BUTTON_EVENTS:
        return Metric.BUTTON, raw
    raise Rejected("invalid_value", f"event: {str(raw)[:40]!r} is not a known event")
