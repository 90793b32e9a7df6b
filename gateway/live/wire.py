"""Live events as NOTIFY payloads: compact JSON, split to stay under PostgreSQL's limit."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from gateway.live.events import CHANGE_OF_EVENT, AlertChanged, Changed, LiveEvent, Resync

PAYLOAD_LIMIT = 7500
"""Bytes per payload: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more."""

_KINDS = frozenset(CHANGE_OF_EVENT.values()) | {"updated"}


class BadPayload(ValueError):
    """A payload this version cannot read."""


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def encode(event: LiveEvent, origin: str) -> Iterator[str]:
    """One or more payloads carrying `event`, each under `PAYLOAD_LIMIT` bytes."""
    if isinstance(event, Resync):
        yield _dumps({"o": origin, "resync": event.reason})
        return
    items: list[tuple[str, Any]] = [
        ("a", [a.id, a.household_id, a.rule, a.severity, a.status, a.change]) for a in event.alerts
    ]
    items += [("h", h) for h in sorted(event.households)]
    items += [("w", [w, h]) for w, h in sorted(event.warnings)]
    items += [("r", h) for h in sorted(event.registry)]
    head = len(_dumps({"o": origin})) + 16
    part: dict[str, list[Any]] = {}
    size = head
    for key, item in items:
        cost = len(_dumps(item).encode()) + 1 + (0 if key in part else 8)
        if part and size + cost > PAYLOAD_LIMIT:
            yield _dumps({"o": origin, **part})
            part, size = {}, head
            cost += 8
        part.setdefault(key, []).append(item)
        size += cost
    if part:
        yield _dumps({"o": origin, **part})


def decode(payload: str) -> tuple[str, LiveEvent]:
    """(origin, event) of a payload; BadPayload if it is not one."""
    try:
        data = json.loads(payload)
        origin = str(data["o"])
        if "resync" in data:
            return origin, Resync(str(data["resync"]))
        alerts = tuple(_alert(item) for item in data.get("a", ()))
        return origin, Changed(
            alerts=alerts,
            households=frozenset(str(h) for h in data.get("h", ())),
            warnings=frozenset((int(w), str(h)) for w, h in data.get("w", ())),
            registry=frozenset(str(h) for h in data.get("r", ())),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPayload(str(exc)) from None


def _alert(item: list[Any]) -> AlertChanged:
    alert_id, household_id, rule, severity, status, change = item
    if change not in _KINDS:
        raise BadPayload(f"unknown change {change!r}")
    return AlertChanged(
        int(alert_id), str(household_id), str(rule), str(severity), str(status), change
    )
