"""Who is calling: a bearer token stands for a principal with a role.

`authenticate` is the one place a token is judged. The gate calls it before a request's body is
read, and the `CurrentUser` dependency reuses what the gate found.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal

from starlette.datastructures import Headers

from gateway.api.context import ApiContext

Role = Literal["admin", "operator", "visitor"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def sees_personal_data(self) -> bool:
        return self.role == "admin"


async def authenticate(context: ApiContext, token: str) -> Principal | None:
    """The principal `token` stands for, or None.

    Today the one admin token from the settings. Accounts whose tokens are stored hashed in the
    database (context.db) belong here too: callers need not change.
    """
    if secrets.compare_digest(token.encode(), context.admin_token.encode()):
        return Principal(name="admin", role="admin")
    return None


def bearer_token(headers: Headers) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None
