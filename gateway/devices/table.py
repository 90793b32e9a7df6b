"""Vendor formats as data: a table of "vendor field -> metric, converter" per format.

A converter turns the vendor's raw value into the metric's canonical raw value (watt-hours to
kilowatt-hours, cubic metres to litres, "emergency" to "sos"). It stays naive: type checks and
ranges are applied afterwards by the metric catalogue. A converter raises `Skip` when the field
is present but says nothing (an empty Zigbee `action`), and `InvalidValue` when it cannot make
sense of the value.

Nothing is rounded: the factories that scale work in decimal, so a value keeps exactly the
digits the device sent (913.252 Wh is 0.913252 kWh, not 0.9132520000000001 nor 0.913).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from decimal import Decimal

from gateway.devices.base import DeviceMessage, Normalised, add_reading
from gateway.devices.catalogue import KIND_BY_METRIC, InvalidValue
from gateway.models import DeviceKind, Metric

Converter = Callable[[object], object]


class Skip(Exception):
    """The field is there but carries no reading (e.g. an empty `action`)."""


def identity(value: object) -> object:
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"expected a number, got {value!r:.40}")
    return float(value)


def as_decimal(value: float) -> Decimal:
    """The number a float was written as: its shortest round-trip form (0.1, not 0.1000...055).

    Arithmetic on these and one conversion back to float adds no binary noise to the result.
    """
    return Decimal(repr(value))


def divide_by(divisor: float) -> Converter:
    """Scale down: Wh -> kWh is divide_by(1000)."""
    by = as_decimal(divisor)

    def convert(value: object) -> object:
        return float(as_decimal(_number(value)) / by)

    return convert


def multiply_by(factor: float) -> Converter:
    """Scale up: m³ -> litres is multiply_by(1000)."""
    by = as_decimal(factor)

    def convert(value: object) -> object:
        return float(as_decimal(_number(value)) * by)

    return convert


def lookup(mapping: Mapping[object, object], *, ignore: Sequence[object] = ("", None)) -> Converter:
    """Map vendor words to canonical values; `ignore` values are no reading at all."""

    def convert(value: object) -> object:
        if isinstance(value, str | int | float | bool) and value in mapping:
            return mapping[value]
        if value in ignore:
            raise Skip
        raise InvalidValue(f"unknown value {value!r:.40}")

    return convert


def word_bool(true: Sequence[str], false: Sequence[str]) -> Converter:
    """Booleans sent as words ("ON"/"OFF", "wet"/"dry"); real booleans pass through."""
    truths = {w.lower() for w in true}
    falses = {w.lower() for w in false}

    def convert(value: object) -> object:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in truths:
            return True
        if isinstance(value, str) and value.lower() in falses:
            return False
        raise InvalidValue(f"expected one of {sorted(truths | falses)}, got {value!r:.40}")

    return convert


def negate(value: object) -> object:
    """For vendor booleans that mean the opposite (contact: true is a closed door)."""
    if not isinstance(value, bool):
        raise InvalidValue(f"expected true/false, got {value!r:.40}")
    return not value


@dataclass(frozen=True, slots=True)
class Field:
    """One vendor field: a dotted path into the JSON object, the metric, the converter."""

    path: str
    metric: Metric
    convert: Converter = identity
    kind: DeviceKind | None = None
    """The device kind this field reveals, when it says more than the metric does."""
    parts: tuple[str, ...] = dataclass_field(init=False, repr=False, compare=False)
    """The path split at its dots (once: every message of the vendor is read through it)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.path.split(".")))


def get_path(body: Mapping[str, object], parts: tuple[str, ...]) -> tuple[bool, object]:
    """(found, value) for a dotted path like "ENERGY.Power", split at its dots."""
    if len(parts) == 1:  # most fields: a key of the object itself
        key = parts[0]
        return (True, body[key]) if key in body else (False, None)
    current: object = body
    for part in parts:
        if not isinstance(current, Mapping) or part not in current:
            return False, None
        current = current[part]
    return True, current


def apply_fields(
    fields: Sequence[Field],
    body: Mapping[str, object],
    message: DeviceMessage,
    ts: datetime,
    kind: DeviceKind | None = None,
) -> Normalised:
    """Read every field of the table present in `body` into readings (or problems)."""
    present: list[tuple[Field, object]] = []
    for f in fields:
        found, raw = get_path(body, f.parts)
        if found:
            present.append((f, raw))
    if kind is None:
        kind = next((f.kind for f, _ in present if f.kind is not None), None)
    if kind is None:
        kind = next(
            (KIND_BY_METRIC[f.metric] for f, _ in present if f.metric in KIND_BY_METRIC), None
        )
    out = Normalised()
    for f, raw in present:
        if raw is None:
            # null is "not known yet" (Zigbee2MQTT publishes it for values it has not received):
            # no reading, though the field still tells what kind of device this is.
            continue
        try:
            value = f.convert(raw)
        except Skip:
            continue
        except (InvalidValue, ArithmeticError) as exc:
            out.problems.append(f"{f.path}: {exc}")
            continue
        add_reading(out, message, kind, f.metric, value, ts)
    return out
