"""The bearer token checked before anything else, the request's body above all.

FastAPI reads a body before it solves a route's dependencies, so a token checked only by a
dependency lets anyone make the gateway read (and validate, and answer about) what they send.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from gateway.api.auth import authenticate, bearer_token
from gateway.api.context import ApiContext

PRINCIPAL = "principal"
"""Key of the authenticated principal in the request's state (`request.state.principal`)."""

UNAUTHORIZED = "missing or invalid bearer token"


def _unauthorized() -> JSONResponse:
    return JSONResponse(
        {"detail": UNAUTHORIZED}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )


class BearerGate:
    """Pure ASGI middleware: a request for a protected path without a valid token gets 401.

    Protected: everything under /api/ except `open_paths` and what starts with
    `open_prefixes` (webhooks, which carry their own signature), and `token_paths` elsewhere (the
    docs or /metrics when configured so). Other paths pass, so an unknown one is still a 404.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        context: ApiContext,
        open_paths: Set[str] = frozenset(),
        open_prefixes: tuple[str, ...] = (),
        token_paths: Set[str] = frozenset(),
    ) -> None:
        self.app = app
        self.context = context
        self.open_paths = frozenset(open_paths)
        self.open_prefixes = open_prefixes
        self.token_paths = frozenset(token_paths)

    def protects(self, path: str) -> bool:
        if path in self.token_paths:
            return True
        if path in self.open_paths or path.startswith(self.open_prefixes):
            return False
        return path == "/api" or path.startswith("/api/")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.protects(scope["path"]):
            await self.app(scope, receive, send)
            return
        token = bearer_token(Headers(scope=scope))
        principal = await authenticate(self.context, token) if token else None
        if principal is None:
            await _unauthorized()(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        state[PRINCIPAL] = principal
        await self.app(scope, receive, send)
