"""Dependencies declared once: the context, a database connection, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.api.auth import Principal, authenticate
from gateway.api.context import ApiContext
from gateway.api.gate import PRINCIPAL, UNAUTHORIZED


def get_context(request: Request) -> ApiContext:
    context = request.app.state.context
    assert isinstance(context, ApiContext)
    return context


Context = Annotated[ApiContext, Depends(get_context)]

# Declares the scheme in the OpenAPI document (the docs' "Authorize" button).
_bearer = HTTPBearer(auto_error=False, description="GATEWAY_ADMIN_TOKEN")


async def get_principal(
    request: Request,
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    vouched = request.scope.get("state", {}).get(PRINCIPAL)
    if isinstance(vouched, Principal):  # the gate checked the token before the body was read
        return vouched
    principal = await authenticate(context, credentials.credentials) if credentials else None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail=UNAUTHORIZED,
            headers={"WWW-Authenticate": "Bearer"},
        )
    return principal


CurrentUser = Annotated[Principal, Depends(get_principal)]


async def read_connection(context: Context) -> AsyncIterator[AsyncConnection]:
    async with context.db.connect() as conn:
        yield conn


ReadConn = Annotated[AsyncConnection, Depends(read_connection)]
