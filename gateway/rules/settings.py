"""Per-household rule settings: overrides of rules.toml, merged and validated.

A household's overrides hold only what differs from the defaults, table by table, in the
shape of rules.toml: {"no_water_use": {"window_h": 16}, "abnormal_vitals": {"limits":
{"bp_systolic_mmhg": {"low": 100, "high": 200}}}}. Keys inside a table replace the default's;
a nested table (the vitals limits) is merged key by key, and each entry of it (one metric's
bounds) is replaced whole, as in rules.toml.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from gateway.rules.catalogue import RulesConfig


class RulesOverrideError(ValueError):
    """The overrides do not make a valid rule configuration; `path` names the key."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def effective_rules(defaults: RulesConfig, overrides: dict[str, Any]) -> RulesConfig:
    """The household's configuration: `defaults` with `overrides` applied, validated."""
    if not isinstance(overrides, dict):
        raise RulesOverrideError("", "overrides must be an object of rule tables")
    merged: dict[str, Any] = defaults.model_dump(mode="json")
    for table, values in overrides.items():
        if table not in merged:
            known = ", ".join(sorted(merged))
            raise RulesOverrideError(table, f"no such rule or section (known: {known})")
        if not isinstance(values, dict):
            raise RulesOverrideError(table, "must be an object of settings")
        merged[table] = _merge_table(merged[table], values)
    try:
        return RulesConfig.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first["loc"])
        raise RulesOverrideError(path, first["msg"]) from None


def _merge_table(default: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    out = dict(default)
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}  # e.g. limits: metric by metric
        else:
            out[key] = value
    return out
