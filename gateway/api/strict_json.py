"""JSON request bodies with finite numbers only.

Python's json reads NaN, Infinity and -Infinity (and 1e400 as infinity); no client means them,
pydantic lets them through float fields, and they cannot be written back as JSON. Every route
reads its body through `StrictJsonRequest`, so they are a 422 like any other malformed JSON.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

# JSON strings first, so that a "NaN" inside one is skipped; then the literals a number may be.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|-?Infinity|NaN|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?')


class _NotFinite(Exception):
    def __init__(self, literal: str) -> None:
        super().__init__(literal)
        self.literal = literal


def _refuse_constant(literal: str) -> None:
    raise _NotFinite(literal)


def _finite_float(literal: str) -> float:
    number = float(literal)
    if not math.isfinite(number):
        raise _NotFinite(literal)
    return number


def _position(text: str, literal: str) -> int:
    return next((m.start() for m in _TOKENS.finditer(text) if m.group() == literal), 0)


def loads_finite(body: bytes) -> Any:
    """Parse JSON, refusing non-finite numbers; every refusal is a json.JSONDecodeError."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        text = body.decode("utf-8", errors="replace")
        message = f"{exc.literal} is not allowed: numbers must be finite"
        raise json.JSONDecodeError(message, text, _position(text, exc.literal)) from None
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", "", 0) from None
    except UnicodeDecodeError:
        raise json.JSONDecodeError("not UTF-8", "", 0) from None


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        return loads_finite(await self.body())


class StrictJsonRoute(APIRoute):
    """A route whose body is parsed by `loads_finite` (FastAPI turns its errors into 422)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_json_handler(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict_json_handler
