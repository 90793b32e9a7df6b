"""The one place that knows SQLite and PostgreSQL spell "insert or ignore" differently."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def upsert(conn: AsyncConnection, table: sa.Table) -> Any:
    """An INSERT supporting on_conflict_do_nothing / on_conflict_do_update for this backend."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
