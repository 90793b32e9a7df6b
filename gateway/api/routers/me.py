"""Who the caller is (GET /api/me): what the dashboard shows and offers after signing in."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from gateway.api.deps import CurrentUser
from gateway.api.strict_json import StrictJsonRoute
from gateway.care.accounts import Role

router = APIRouter(prefix="/api", tags=["accounts"], route_class=StrictJsonRoute)


class MeOut(BaseModel):
    name: str
    role: Role
    township: str | None = Field(description="an operator's township; null: not bound to one")
    sees_personal_data: bool = Field(
        description="whole ID and phone numbers on an elder's own page (admin, operator)"
    )


@router.get("/me", response_model=MeOut)
async def me(user: CurrentUser) -> MeOut:
    """The account the bearer token stands for (a visitor's phone is not repeated here)."""
    return MeOut(
        name=user.name,
        role=user.role,
        township=user.township,
        sees_personal_data=user.sees_personal_data,
    )
