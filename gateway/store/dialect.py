"""Where SQLite and PostgreSQL spell things differently in SQLAlchemy Core: "insert or ignore",
and looking inside a JSON array. The ingest's writes per batch, in each backend's own plain SQL,
are in gateway/store/bulk.py."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ColumnElement


def upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT supporting on_conflict_do_nothing / on_conflict_do_update for this backend."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def json_array_holds(
    conn: AsyncConnection, column: sa.ColumnElement[Any], key: str, value: str
) -> ColumnElement[bool]:
    """A WHERE clause: the JSON array in `column` holds an object whose `key` is `value`."""
    if conn.dialect.name == "postgresql":
        return sa.cast(column, postgresql.JSONB).contains([{key: value}])
    element = sa.func.json_each(column).table_valued("value")
    return sa.exists(
        sa.select(1)
        .select_from(element)
        .where(sa.func.json_extract(element.c.value, f"$.{key}") == value)
    )
