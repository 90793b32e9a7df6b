"""Who is calling: a bearer token stands for a principal with a role.

`authenticate` is the one place a token is judged. The gate calls it before a request's body is
read, and the `CurrentUser` dependency reuses what the gate found. The settings' admin token is
the first admin; everyone else has an account (POST /api/accounts) whose token is stored hashed.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from starlette.datastructures import Headers

from gateway.api.context import ApiContext
from gateway.care.accounts import Role, account_for_token
from gateway.care.audit import Actor


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    account_id: int | None = None
    township: str | None = None
    """An operator's area: they see the households of this township only."""
    phone: str | None = None
    """A visitor's phone: they see the households they are assigned to by this number."""

    @property
    def sees_personal_data(self) -> bool:
        """Whole ID and phone numbers on an elder's own page (never in lists or exports)."""
        return self.role in ("admin", "operator")

    @property
    def actor(self) -> Actor:
        return Actor(self.name, self.role, self.account_id)


async def authenticate(context: ApiContext, token: str) -> Principal | None:
    """The principal `token` stands for, or None."""
    if secrets.compare_digest(token.encode(), context.admin_token.encode()):
        return Principal(name="admin", role="admin")
    async with context.db.connect() as conn:
        account = await account_for_token(conn, token)
    if account is None:
        return None
    return Principal(
        name=account.name,
        role=account.role,
        account_id=account.id,
        township=account.township,
        phone=account.phone,
    )


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
