"""Dependencies declared once: the context, a database connection, the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.api.auth import Principal, authenticate
from gateway.api.context import ApiContext
from gateway.api.gate import PRINCIPAL, UNAUTHORIZED

MAX_ROW_ID = 2**31 - 1
"""Row ids (alerts, away periods) are 32-bit integers in PostgreSQL: a larger id in a request
is refused with 422 before it reaches the database, where it would be a 500."""

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
HouseholdKey = Annotated[str, Path(min_length=1, max_length=64)]
"""A household id in a path: as long as the database column at most."""


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
