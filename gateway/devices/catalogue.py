"""One schema per metric (type, unit, valid range, display precision), applied after every
normaliser.

Normalisers stay naive: they map vendor fields to metrics, and `check_value` decides whether the
value is of the right type and physically possible. Values keep the precision the device sent
(a slow energy counter moves by fractions of a watt-hour); they are rounded only when shown to a
person, by `format_value`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from enum import StrEnum

from gateway.models import ButtonAction, DeviceKind, Metric, ReadingValue


class ValueType(StrEnum):
    BOOL = "bool"
    NUMBER = "number"
    CHOICE = "choice"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    type: ValueType
    unit: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    display_decimals: int | None = None
    """Decimals shown to people (SMS, alert summaries); stored values are never rounded."""
    choices: frozenset[str] = frozenset()


def _bool() -> MetricSpec:
    return MetricSpec(ValueType.BOOL)


def _number(unit: str, lo: float, hi: float, display_decimals: int) -> MetricSpec:
    return MetricSpec(ValueType.NUMBER, unit, lo, hi, display_decimals)


CATALOGUE: dict[Metric, MetricSpec] = {
    Metric.SMOKE: _bool(),
    Metric.GAS_LEAK: _bool(),
    Metric.WATER_LEAK: _bool(),
    # Cumulative meters: a household meter never runs backwards and a 10-digit register is the
    # largest sold; flow above 200 l/min is beyond any domestic pipe.
    Metric.WATER_TOTAL_L: _number("L", 0, 1e10, 1),
    Metric.WATER_FLOW_LPM: _number("L/min", 0, 200, 2),
    Metric.ENERGY_TOTAL_KWH: _number("kWh", 0, 1e9, 3),
    # A domestic supply in China is at most 63 A single phase or 3 x 63 A: ~45 kW.
    Metric.POWER_W: _number("W", 0, 50_000, 1),
    Metric.HEART_RATE_BPM: _number("bpm", 20, 250, 0),
    Metric.SPO2_PCT: _number("%", 50, 100, 0),
    Metric.BP_SYSTOLIC_MMHG: _number("mmHg", 50, 280, 0),
    Metric.BP_DIASTOLIC_MMHG: _number("mmHg", 20, 180, 0),
    Metric.BODY_TEMP_C: _number("°C", 30, 44, 1),
    Metric.FALL: _bool(),
    Metric.PRESENCE: _bool(),
    Metric.DOOR_OPEN: _bool(),
    Metric.BUTTON: MetricSpec(ValueType.CHOICE, choices=frozenset(a.value for a in ButtonAction)),
    Metric.BATTERY_PCT: _number("%", 0, 100, 0),
    Metric.BATTERY_LOW: _bool(),
    Metric.TAMPER: _bool(),
    Metric.ONLINE: _bool(),
    # Zigbee LQI: 0..255.
    Metric.LINK_QUALITY: _number("lqi", 0, 255, 0),
    # The detector's test button is being pressed: its smoke/gas report is a test, not a fire.
    Metric.SELF_TEST: _bool(),
}

# The kind a device most likely is when a metric arrives from it and nothing else says.
KIND_BY_METRIC: dict[Metric, DeviceKind] = {
    Metric.SMOKE: DeviceKind.SMOKE_DETECTOR,
    Metric.GAS_LEAK: DeviceKind.GAS_DETECTOR,
    Metric.WATER_LEAK: DeviceKind.WATER_LEAK_SENSOR,
    Metric.WATER_TOTAL_L: DeviceKind.WATER_METER,
    Metric.WATER_FLOW_LPM: DeviceKind.WATER_METER,
    Metric.ENERGY_TOTAL_KWH: DeviceKind.POWER_METER,
    Metric.POWER_W: DeviceKind.POWER_METER,
    Metric.HEART_RATE_BPM: DeviceKind.HEALTH_MONITOR,
    Metric.SPO2_PCT: DeviceKind.HEALTH_MONITOR,
    Metric.BP_SYSTOLIC_MMHG: DeviceKind.HEALTH_MONITOR,
    Metric.BP_DIASTOLIC_MMHG: DeviceKind.HEALTH_MONITOR,
    Metric.BODY_TEMP_C: DeviceKind.HEALTH_MONITOR,
    Metric.FALL: DeviceKind.FALL_SENSOR,
    Metric.PRESENCE: DeviceKind.MOTION_SENSOR,
    Metric.DOOR_OPEN: DeviceKind.DOOR_SENSOR,
    Metric.BUTTON: DeviceKind.CALL_BUTTON,
}


class InvalidValue(ValueError):
    """A value of the wrong type or outside what is physically possible."""


def check_value(metric: Metric, value: object) -> ReadingValue:
    """`value` checked for `metric` (numbers as floats, never rounded), or InvalidValue why not."""
    spec = CATALOGUE[metric]
    if spec.type is ValueType.BOOL:
        if not isinstance(value, bool):
            raise InvalidValue(f"{metric}: expected true/false, got {_show(value)}")
        return value
    if spec.type is ValueType.CHOICE:
        if not isinstance(value, str) or value not in spec.choices:
            allowed = ", ".join(sorted(spec.choices))
            raise InvalidValue(f"{metric}: expected one of {allowed}, got {_show(value)}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidValue(f"{metric}: expected a number, got {_show(value)}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise InvalidValue(f"{metric}: expected a finite number, got {_show(value)}")
    if (spec.minimum is not None and number < spec.minimum) or (
        spec.maximum is not None and number > spec.maximum
    ):
        raise InvalidValue(
            f"{metric}: {_show(value)} {spec.unit or ''} is outside the possible range "
            f"{spec.minimum:g}..{spec.maximum:g}".replace("  ", " ")
        )
    return number


def unit_of(metric: Metric) -> str | None:
    return CATALOGUE[metric].unit


def format_value(metric: Metric, value: float) -> str:
    """A number of `metric` as people read it: its display decimals and unit ("51.5" -> "52 %").

    Halves round up, as people round: 0.5 is 1, 2.675 is 2.68 (the float's decimal form is
    rounded, not its binary approximation).
    """
    spec = CATALOGUE[metric]
    if spec.type is not ValueType.NUMBER or spec.display_decimals is None:
        raise ValueError(f"{metric} is not a number")
    with localcontext(rounding=ROUND_HALF_UP):
        text = f"{Decimal(repr(float(value))):.{spec.display_decimals}f}"
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]  # a tiny negative value shows as 0, not -0
    return f"{text} {spec.unit}"


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
