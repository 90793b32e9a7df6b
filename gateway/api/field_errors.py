"""A 422 about one field that only the route can judge (it needs the clock or the database)."""

from __future__ import annotations

from fastapi.exceptions import RequestValidationError


def invalid_field(*loc: str | int, msg: str) -> RequestValidationError:
    """The same answer pydantic gives: where (loc) and what (msg), never the value."""
    return RequestValidationError([{"loc": ("body", *loc), "msg": msg, "type": "value_error"}])
