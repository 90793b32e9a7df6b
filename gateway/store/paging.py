"""A page of a listing and its total, both from one query, so they never disagree on filters."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Window:
    """Which rows of a listing to read: `limit` of them after skipping `offset`."""

    limit: int = 100
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """The rows of one window and how many rows the whole listing has."""

    items: list[T]
    total: int


async def count_rows(conn: AsyncConnection, query: sa.Select[Any]) -> int:
    """How many rows `query` gives, counted by the database (its order and window dropped)."""
    bare = query.order_by(None).limit(None).offset(None)
    counted = sa.select(sa.func.count()).select_from(bare.subquery())
    return int(await conn.scalar(counted) or 0)


async def fetch_page(
    conn: AsyncConnection,
    query: sa.Select[Any],
    window: Window,
    item: Callable[[Row[Any]], T],
) -> Page[T]:
    """The window's rows of an ordered `query`, each made an item, with the query's total."""
    total = await count_rows(conn, query)
    if window.offset >= total:
        return Page([], total)  # past the end: no need to ask the database for nothing
    rows = await conn.execute(query.limit(window.limit).offset(window.offset))
    return Page([item(r) for r in rows], total)
