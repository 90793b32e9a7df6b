"""A 422 about one place that only the route can judge (it needs the clock or the database)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.exceptions import RequestValidationError


def invalid(
    loc: Sequence[str | int], msg: str, kind: str = "value_error"
) -> RequestValidationError:
    """The answer pydantic gives, so clients read one format: where (`loc`, e.g. ("body",
    "visited_at")), what (`msg`) and its `type`, never the value."""
    return RequestValidationError([{"loc": tuple(loc), "msg": msg, "type": kind}])
