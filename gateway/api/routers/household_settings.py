"""A household's own rule settings (overrides of rules.toml), escalation steps and activity."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.alerts.escalation import household_policies
from gateway.alerts.policy import DEFAULT_POLICIES, Step
from gateway.api.auth import Principal
from gateway.api.deps import Context, CurrentUser, ReadConn
from gateway.api.field_errors import invalid
from gateway.api.scope import VisibleHousehold
from gateway.api.strict_json import StrictJsonRoute, loads_finite
from gateway.care import audit
from gateway.care.households import Household, get_household
from gateway.models import Severity
from gateway.rules.catalogue import RulesConfig
from gateway.rules.settings import RulesOverrideError, effective_rules
from gateway.store.rule_settings import (
    RuleOverrides,
    get_overrides,
    put_overrides,
)
from gateway.store.tables import households

router = APIRouter(
    prefix="/api/households", tags=["household settings"], route_class=StrictJsonRoute
)

MAX_OVERRIDES_BYTES = 16 * 1024
"""Overrides of every table of rules.toml fit in about 1.5 KB; more is not a setting."""


def _may_change_rules(user: CurrentUser) -> Principal:
    if user.role != "admin":
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin may change rule settings")
    return user


RulesEditor = Annotated[Principal, Depends(_may_change_rules)]


async def require_household(conn: AsyncConnection, household_id: str) -> Household:
    household = await get_household(conn, household_id)
    if household is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")
    return household


# --- rule settings ------------------------------------------------------------------------------


class RuleSettingsOut(BaseModel):
    household_id: str
    overrides: dict[str, Any]
    """Only what differs from the defaults, in the shape of rules.toml."""
    effective: dict[str, Any]
    """The configuration the household's rules run with."""
    defaults: dict[str, Any]
    updated_at: datetime | None
    updated_by: str | None
    override_error: str | None = None
    """Set when stored overrides no longer fit the defaults (rules.toml changed since): the
    household then runs on the defaults until its overrides are saved again."""


def _settings_out(
    household_id: str, defaults: RulesConfig, saved: RuleOverrides | None
) -> RuleSettingsOut:
    overrides = saved.overrides if saved else {}
    error = None
    try:
        effective = effective_rules(defaults, overrides)
    except RulesOverrideError as exc:
        effective, error = defaults, str(exc)
    return RuleSettingsOut(
        household_id=household_id,
        overrides=overrides,
        effective=effective.model_dump(mode="json"),
        defaults=defaults.model_dump(mode="json"),
        updated_at=saved.updated_at if saved else None,
        updated_by=saved.updated_by if saved else None,
        override_error=error,
    )


def _differences(
    overrides: dict[str, Any], effective: RulesConfig, defaults: RulesConfig
) -> dict[str, Any]:
    """The overrides as validated (canonical JSON values), without those equal to the default.

    `overrides` has passed `effective_rules`, so every table and key in it exists.
    """
    canonical = effective.model_dump(mode="json")
    out: dict[str, Any] = {}
    for table, values in overrides.items():
        mine, theirs = getattr(effective, table), getattr(defaults, table)
        kept: dict[str, Any] = {}
        for key, value in values.items():
            ours, default = getattr(mine, key), getattr(theirs, key)
            if isinstance(value, dict) and isinstance(ours, BaseModel):
                # A nested table (the vitals limits): entry by entry, as it is merged.
                entries = {
                    k: canonical[table][key][k]
                    for k in value
                    if getattr(ours, k) != getattr(default, k)
                }
                if entries:
                    kept[key] = entries
            elif ours != default:
                kept[key] = canonical[table][key]
        if kept:
            out[table] = kept
    return out


async def _overrides_body(request: Request) -> Any:
    """The request's JSON, whatever its content type (the route's limit caps its size)."""
    try:
        return loads_finite(await request.body())
    except json.JSONDecodeError as exc:
        raise invalid(["body", exc.pos], f"JSON decode error: {exc.msg}", "json_invalid") from None


_OVERRIDES_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "additionalProperties": {"type": "object"},
                    "example": {
                        "no_water_use": {"window_h": 16},
                        "abnormal_vitals": {
                            "limits": {"bp_systolic_mmhg": {"low": 100, "high": 200}}
                        },
                    },
                }
            }
        },
    }
}


@router.get("/{household_id}/rules", response_model=RuleSettingsOut)
async def get_rule_settings(
    household_id: VisibleHousehold, context: Context, conn: ReadConn, user: CurrentUser
) -> RuleSettingsOut:
    """The household's rule overrides, the configuration in effect, and the defaults."""
    await require_household(conn, household_id)
    saved = await get_overrides(conn, household_id)
    return _settings_out(household_id, context.rules_defaults, saved)


@router.put(
    "/{household_id}/rules",
    response_model=RuleSettingsOut,
    openapi_extra=_OVERRIDES_SCHEMA,
    max_body_size=MAX_OVERRIDES_BYTES,
)
async def put_rule_settings(
    household_id: VisibleHousehold, request: Request, context: Context, user: RulesEditor
) -> RuleSettingsOut:
    """Replace the household's overrides (tables of rules.toml); `{}` returns it to the defaults.

    Values equal to the default are not kept: the household then follows the default.
    """
    overrides = await _overrides_body(request)
    if not isinstance(overrides, dict):
        raise invalid(["body"], "overrides must be an object of rule tables", "dict_type")
    async with context.db.begin() as conn:
        await require_household(conn, household_id)
        try:
            effective = effective_rules(context.rules_defaults, overrides)
        except RulesOverrideError as exc:
            path = [int(p) if p.isdigit() else p for p in exc.path.split(".") if p]
            raise invalid(["body", *path], exc.message, "rule_override") from None
        kept = _differences(overrides, effective, context.rules_defaults)
        now = context.clock.now()
        await put_overrides(conn, household_id, kept, user.name, now)
        saved = await get_overrides(conn, household_id)
        await audit.record(
            conn,
            user.actor,
            "household.rules",
            now=now,
            household_id=household_id,
            details={"rules": sorted(kept)},
        )
    await context.household_changed(household_id)
    return _settings_out(household_id, context.rules_defaults, saved)


# --- escalation ------------------------------------------------------------------------------


class EscalationIn(BaseModel):
    """The household's own escalation steps for some severities (the others follow the
    settings); `{"policies": {}}` returns it to the settings."""

    model_config = ConfigDict(extra="forbid")

    policies: dict[Severity, Annotated[list[Step], Field(min_length=1, max_length=10)]]


class EscalationSettingsOut(BaseModel):
    household_id: str
    policies: dict[Severity, list[Step]] = Field(description="the household's own steps")
    effective: dict[Severity, list[Step]] = Field(
        description="what an alert of each severity gets (before a check-in call is put first "
        "for the inactivity rules)"
    )


def _escalation_out(
    household_id: str, own: dict[Severity, list[Step]], defaults: dict[Severity, list[Step]]
) -> EscalationSettingsOut:
    effective = {s: own.get(s) or defaults.get(s) or DEFAULT_POLICIES[s] for s in Severity}
    return EscalationSettingsOut(household_id=household_id, policies=own, effective=effective)


@router.get("/{household_id}/escalation", response_model=EscalationSettingsOut)
async def get_escalation(
    household_id: VisibleHousehold, context: Context, conn: ReadConn, user: CurrentUser
) -> EscalationSettingsOut:
    """Who this household's alerts reach, in which order, and how long each step waits."""
    household = await require_household(conn, household_id)
    own = household_policies(household.escalation)
    return _escalation_out(household_id, own, context.escalation_defaults)


@router.put(
    "/{household_id}/escalation", response_model=EscalationSettingsOut, max_body_size=16 * 1024
)
async def put_escalation(
    household_id: VisibleHousehold, body: EscalationIn, context: Context, user: RulesEditor
) -> EscalationSettingsOut:
    """Replace the household's own escalation steps; alerts already open keep theirs."""
    stored = {s.value: [step.model_dump(mode="json") for step in steps]
              for s, steps in body.policies.items()}  # fmt: skip
    async with context.db.begin() as conn:
        await require_household(conn, household_id)
        now = context.clock.now()
        await conn.execute(
            sa.update(households)
            .where(households.c.id == household_id)
            .values(escalation=stored or None, updated_at=now)
        )
        await audit.record(
            conn,
            user.actor,
            "household.escalation",
            now=now,
            household_id=household_id,
            details={"severities": sorted(stored)},
        )
    return _escalation_out(household_id, dict(body.policies), context.escalation_defaults)


# --- activity and the learned routine -----------------------------------------------------------


class RoutineOut(BaseModel):
    status: Literal["learned", "learning", "off"]
    """"learning" until min_days of history are known (the fixed rules cover it meanwhile);
    "off" when missed_routine is disabled for the household."""
    days_known: int
    min_days: int | None
    usual_start: datetime | None
    """Today's usual start of the day (median of comparable days)."""
    late_bound: datetime | None
    """No sign of life by then opens missed_routine."""
    spread_min: float | None
    weekday_aware: bool | None


class ActivityOut(BaseModel):
    household_id: str
    timezone: str
    last_heard: datetime | None
    """Anything at all from the home (a heartbeat will do)."""
    last_activity: dict[str, datetime]
    """Per kind of sign of life (water, power, motion, door, button, vitals)."""
    water_used_12h_l: float | None
    away_until: datetime | None
    """Set while the household is away."""
    routine: RoutineOut


@router.get("/{household_id}/activity", response_model=ActivityOut)
async def household_activity(
    household_id: VisibleHousehold, context: Context, conn: ReadConn, user: CurrentUser
) -> ActivityOut:
    """Signs of life and the learned routine, as the inactivity rules see them now."""
    await require_household(conn, household_id)
    summary = await context.routine_summary(household_id)
    expected = summary.expected
    return ActivityOut(
        household_id=household_id,
        timezone=summary.timezone,
        last_heard=summary.last_heard,
        last_activity=summary.last_activity,
        water_used_12h_l=summary.water_used_12h_l,
        away_until=summary.away_until,
        routine=RoutineOut(
            status=summary.routine,
            days_known=summary.days_known,
            min_days=summary.min_days,
            usual_start=expected.usual if expected else None,
            late_bound=expected.late if expected else None,
            spread_min=expected.spread_min if expected else None,
            weekday_aware=expected.weekday_aware if expected else None,
        ),
    )
