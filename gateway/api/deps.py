"""Dependencies declared once: the context, a database connection, the caller."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.api.context import ApiContext

Role = Literal["admin", "operator", "visitor"]


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role

    @property
    def sees_personal_data(self) -> bool:
        return self.role == "admin"


def get_context(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


Context = Annotated[ApiContext, Depends(get_context)]

_bearer = HTTPBearer(auto_error=False, description="GATEWAY_ADMIN_TOKEN")


def get_principal(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), context.admin_token.encode()
    ):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="missing or invalid bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return Principal(name="admin", role="admin")


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def read_connection(context: Context) -> AsyncIterator[AsyncConnection]:
    async with context.db.connect() as conn:
        yield conn


ReadConn = Annotated[AsyncConnection, Depends(read_connection)]
