"""A fresh database for a benchmark: SQLite in a folder, or a new one on a PostgreSQL server."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url


async def _admin(server_url: str, sql: str) -> None:
    import asyncpg

    server = make_url(server_url)
    conn = await asyncpg.connect(
        host=server.host,
        port=server.port,
        user=server.username,
        password=server.password,
        database=server.database or "postgres",
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_database(server_url: str) -> str:
    """Create a database of its own on the server `server_url` names; its URL."""
    name = f"gw_bench_{secrets.token_hex(6)}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(database_url: str) -> None:
    """Drop a database `create_database` made, whoever is still connected to it."""
    url = make_url(database_url)
    await _admin(
        url.set(database="postgres").render_as_string(hide_password=False),
        f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)',
    )


@contextmanager
def fresh_database(server_url: str | None, folder: Path, name: str = "bench") -> Iterator[str]:
    """SQLite `name`.db in `folder`, or a new database on the server `server_url` names,
    dropped afterwards (for scripts outside an event loop)."""
    if server_url is None:
        yield f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
        return
    url = asyncio.run(create_database(server_url))
    try:
        yield url
    finally:
        asyncio.run(drop_database(url))
