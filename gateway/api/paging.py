"""Pages of list routes: `limit` and `offset` in, `X-Total-Count` and a `Link` to the next out.

Every list that grows with a county's numbers answers one page at a time; its body stays a
JSON list, so the count and the way on travel in headers (as GitHub's API does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode

from fastapi import Depends, Query, Request, Response

from gateway.store.paging import Page, Window

T = TypeVar("T")

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1
"""Past this no listing has rows; a larger number would overflow the database's integer."""
TOTAL_HEADER = "X-Total-Count"

PAGED_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "headers": {
            TOTAL_HEADER: {
                "description": "rows matching the filters, on every page",
                "schema": {"type": "integer"},
            },
            "Link": {
                "description": 'the next page, `<relative URL>; rel="next"`, while more remain',
                "schema": {"type": "string"},
            },
        }
    }
}
"""For a paged route's `responses=`: the OpenAPI document names the headers."""


@dataclass(frozen=True, slots=True)
class Paging:
    """The window a request asks for, and where its answer's headers go."""

    window: Window
    request: Request
    response: Response

    def answer(self, page: Page[T]) -> list[T]:
        """The page's items, with the total and the next page's link set on the response."""
        self.response.headers[TOTAL_HEADER] = str(page.total)
        following = self.window.offset + self.window.limit
        if following < page.total:
            self.response.headers["Link"] = f'<{self._url(following)}>; rel="next"'
        return page.items

    def _url(self, offset: int) -> str:
        """This request's path and filters, at `offset` (relative: proxies keep their host)."""
        kept = [
            (k, v)
            for k, v in self.request.query_params.multi_items()
            if k not in ("offset", "limit")
        ]
        kept += [("offset", str(offset)), ("limit", str(self.window.limit))]
        return f"{self.request.url.path}?{urlencode(kept)}"


def paging(
    request: Request,
    response: Response,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="rows per page")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="rows skipped")] = 0,
) -> Paging:
    """The request's window; FastAPI hands every dependency the same response to set headers on."""
    return Paging(Window(limit, offset), request, response)


PageQuery = Annotated[Paging, Depends(paging)]
"""A list route's `limit` (1..1000, default 100) and `offset` (>= 0), and its answer's headers."""
