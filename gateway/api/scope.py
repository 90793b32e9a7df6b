"""What a caller may see: an operator their township, a visitor the elders assigned to them.

Every route that names a household, or lists anything that belongs to households, filters
through here. Outside a caller's scope a household does not exist for them: 404, never 403,
so a visitor cannot even learn which household ids are taken.
"""

from __future__ import annotations

from typing import Annotated

import sqlalchemy as sa
from fastapi import Depends, HTTPException, status
from sqlalchemy.sql import ColumnElement

from gateway.api.auth import Principal
from gateway.api.deps import CurrentUser, HouseholdKey, ReadConn, RowId
from gateway.care.accounts import Role
from gateway.care.households import households_visited_by
from gateway.store.care_tables import referrals
from gateway.store.tables import alerts, households


def visible_households(user: Principal) -> sa.Select[tuple[str]] | None:
    """The ids of the households `user` may see, as a subquery; None: every household."""
    if user.role == "admin":
        return None
    if user.role == "operator":
        return sa.select(households.c.id).where(households.c.township == (user.township or ""))
    return households_visited_by(user.phone or "")


def in_scope(user: Principal, household_id: sa.ColumnElement[str]) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows whose `household_id` the user may see."""
    visible = visible_households(user)
    return sa.true() if visible is None else household_id.in_(visible)


def households_in_scope(user: Principal) -> ColumnElement[bool]:
    """A WHERE clause on the `households` table itself keeping the user's households: the same
    scope as `in_scope`, written so an operator's township is a filter the index can serve
    (for queries that read many households, such as the overview)."""
    if user.role == "operator":
        return households.c.township == (user.township or "")
    return in_scope(user, households.c.id)


async def can_see(conn: ReadConn, user: Principal, household_id: str) -> bool:
    """Whether the household exists and is within the user's scope."""
    found = await conn.scalar(
        sa.select(households.c.id).where(
            households.c.id == household_id, in_scope(user, households.c.id)
        )
    )
    return found is not None


def not_found(household_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"household {household_id} not found")


async def visible_household(household_id: HouseholdKey, user: CurrentUser, conn: ReadConn) -> str:
    """The path's household id when the caller may see it; 404 otherwise."""
    if not await can_see(conn, user, household_id):
        raise not_found(household_id)
    return household_id


VisibleHousehold = Annotated[str, Depends(visible_household)]
"""A household id from the path that exists and that the caller may see."""


async def _owned_by_visible_household(
    conn: ReadConn, user: Principal, table: sa.Table, row_id: int, noun: str
) -> int:
    """`row_id` when the row exists and its household is within the caller's scope; 404
    otherwise, before the request's body is judged (a 422 would tell the row exists)."""
    household_id = await conn.scalar(sa.select(table.c.household_id).where(table.c.id == row_id))
    if household_id is None or not await can_see(conn, user, household_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{noun} {row_id} not found")
    return row_id


async def visible_alert(alert_id: RowId, user: CurrentUser, conn: ReadConn) -> int:
    """The path's alert id when its household is within the caller's scope; 404 otherwise."""
    return await _owned_by_visible_household(conn, user, alerts, alert_id, "alert")


async def visible_referral(referral_id: RowId, user: CurrentUser, conn: ReadConn) -> int:
    """The path's referral id when its household is within the caller's scope; 404 otherwise."""
    return await _owned_by_visible_household(conn, user, referrals, referral_id, "referral")


VisibleAlert = Annotated[int, Depends(visible_alert)]
"""An alert id from the path that exists and whose household the caller may see."""
VisibleReferral = Annotated[int, Depends(visible_referral)]
"""A referral id from the path that exists and whose household the caller may see."""


def allow(*roles: Role) -> object:
    """A dependency that lets only these roles through (403 for the others)."""

    async def check(user: CurrentUser) -> Principal:
        if user.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, f"this needs the role {' or '.join(roles)}"
            )
        return user

    return Depends(check)


AdminUser = Annotated[Principal, allow("admin")]
"""The caller, who must be an admin."""
StaffUser = Annotated[Principal, allow("admin", "operator")]
"""The caller, who must be an admin or an operator (visitors may not change the setup)."""
