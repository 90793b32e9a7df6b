"""Accounts: admins give operators and visitors their own tokens, and take them back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, StringConstraints, model_validator

from gateway.api.deps import Context, ReadConn, RowId
from gateway.api.paging import PAGED_RESPONSE, PageQuery
from gateway.api.scope import AdminUser
from gateway.api.strict_json import StrictJsonRoute
from gateway.care import audit
from gateway.care.accounts import Account, Role, create_account, list_accounts, revoke_account
from gateway.care.phones import ValidPhone
from gateway.privacy import mask_phone

router = APIRouter(prefix="/api/accounts", tags=["accounts"], route_class=StrictJsonRoute)

Name = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
Area = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    role: Role
    township: Area | None = None
    """An operator's area (required for operators): they see this township's households."""
    phone: ValidPhone | None = None
    """A visitor's phone (required for visitors): they see the elders assigned to this number."""

    @model_validator(mode="after")
    def _area_or_phone(self) -> Self:
        if self.role == "operator" and not self.township:
            raise ValueError("an operator needs a township (their area)")
        if self.role == "visitor" and not self.phone:
            raise ValueError("a visitor needs a phone (their assignments are matched by it)")
        return self


class AccountOut(BaseModel):
    id: int
    name: str
    role: Role
    township: str | None
    phone: str | None
    """Masked."""
    created_at: datetime
    created_by: str
    revoked_at: datetime | None


class NewAccount(AccountOut):
    token: str
    """The bearer token: shown this once, stored only as a hash."""


def _out(a: Account) -> dict[str, object]:
    return {
        "id": a.id,
        "name": a.name,
        "role": a.role,
        "township": a.township,
        "phone": mask_phone(a.phone) if a.phone else None,
        "created_at": a.created_at,
        "created_by": a.created_by,
        "revoked_at": a.revoked_at,
    }


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewAccount)
async def create(body: AccountIn, context: Context, user: AdminUser) -> NewAccount:
    """Create an account; its token is in this answer and nowhere else."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        account, token = await create_account(
            conn,
            name=body.name,
            role=body.role,
            township=body.township if body.role == "operator" else None,
            phone=body.phone if body.role == "visitor" else None,
            by=user.name,
            now=now,
        )
        await audit.record(
            conn,
            user.actor,
            "account.create",
            now=now,
            target=f"account {account.id}",
            details={"name": account.name, "role": account.role, "township": account.township},
        )
    return NewAccount.model_validate({**_out(account), "token": token})


@router.get("", response_model=list[AccountOut], responses=PAGED_RESPONSE)
async def list_all(conn: ReadConn, user: AdminUser, pages: PageQuery) -> list[AccountOut]:
    """Every account by id, revoked ones too (phones masked)."""
    found = await list_accounts(conn, pages.window)
    return [AccountOut.model_validate(_out(a)) for a in pages.answer(found)]


@router.delete("/{account_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke(account_id: RowId, context: Context, user: AdminUser) -> None:
    """Revoke an account: its token stops working at once."""
    now = context.clock.now()
    async with context.db.begin() as conn:
        account = await revoke_account(conn, account_id, now)
        if account is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"account {account_id} not found")
        await audit.record(
            conn, user.actor, "account.revoke", now=now, target=f"account {account_id}"
        )
