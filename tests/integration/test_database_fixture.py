"""`database_url` hands each test its own empty, writable database, and removes it afterwards."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine


async def test_database_url_is_an_empty_writable_database_of_its_own(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "postgresql":
        assert url.database is not None
        assert url.database.startswith("gw_test_")
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            assert tables == []
            await conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)"))
            await conn.execute(sa.text("INSERT INTO probe (id, note) VALUES (1, '收到')"))
        async with engine.connect() as conn:
            note = (await conn.execute(sa.text("SELECT note FROM probe WHERE id = 1"))).scalar_one()
        assert note == "收到"
    finally:
        await engine.dispose()


def test_sqlite_url_is_a_file_in_the_test_directory(sqlite_url: str, tmp_path: Path) -> None:
    url = make_url(sqlite_url)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == f"{tmp_path}/gateway.db"
