"""Error answers that carry no personal data: nothing echoed, nothing of a body logged.

A request's body is an elder's name, address, phone and ID numbers. FastAPI's own 422 echoes
each refused value back ("input") and a 500's logged traceback ends with the exception's text,
which for a validation or database error holds the values it was given.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_LOGGED_DETAIL = 200


def _public_error(error: Mapping[str, Any]) -> dict[str, Any]:
    loc = [part if isinstance(part, int) else str(part) for part in error.get("loc", ())]
    msg = str(error.get("msg", "invalid"))
    kind = str(error.get("type", "value_error"))
    ctx = error.get("ctx")
    if kind == "json_invalid" and isinstance(ctx, Mapping) and "error" in ctx:
        msg = f"{msg}: {ctx['error']}"  # the parser's own words, e.g. "Expecting ',' delimiter"
    return {"loc": loc, "msg": msg, "type": kind}


async def validation_failed(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and what (loc, msg, type), never the refused value ("input", "ctx")."""
    errors: Sequence[Any] = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [_public_error(e) for e in errors if isinstance(e, Mapping)]
    return JSONResponse({"detail": detail}, status_code=422)


class InternalErrors:
    """Pure ASGI middleware: an exception a route did not handle becomes a 500 here.

    The log says where it happened (method, path, the frames) and what (its type and the first
    line of its text, short): the rest of the text, where the values are, stays out. Nothing
    propagates to the server, which would log the whole of it.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except Exception as exc:  # the last line of defence, by design
            first_line = (str(exc).splitlines() or [""])[0][:MAX_LOGGED_DETAIL]
            log.error(
                "%s %s failed: %s: %s\n%s",
                scope.get("method", ""),
                scope.get("path", ""),
                type(exc).__qualname__,
                first_line,
                "".join(traceback.format_tb(exc.__traceback__)).rstrip(),
            )
            if not started:
                response = JSONResponse({"detail": "internal error"}, status_code=500)
                await response(scope, receive, send)
