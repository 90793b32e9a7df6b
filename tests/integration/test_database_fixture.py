"""The database fixtures: each test gets a writable database of its own, removed afterwards.

`database_url`, `sqlite_url` and `postgres_url` are copies of a template migrated once per
session; `empty_database_url` has no tables at all, for the migrations' own tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.store.database import alembic_config

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def tables_and_revision(url: str) -> tuple[list[str], list[str]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            revisions: list[str] = []
            if "alembic_version" in tables:
                result = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
                revisions = list(result.scalars())
        return tables, revisions
    finally:
        await engine.dispose()


async def write_and_read(url: str) -> str:
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text("CREATE TABLE probe (id INTEGER PRIMARY KEY, note TEXT)"))
            await conn.execute(sa.text("INSERT INTO probe (id, note) VALUES (1, '收到')"))
        async with engine.connect() as conn:
            return (await conn.execute(sa.text("SELECT note FROM probe WHERE id = 1"))).scalar_one()
    finally:
        await engine.dispose()


def assert_own_database(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        assert parsed.database is not None
        assert parsed.database.startswith("gw_test_")


async def test_database_url_is_a_migrated_writable_database_of_its_own(database_url: str) -> None:
    assert_own_database(database_url)
    tables, revisions = await tables_and_revision(database_url)
    assert {"households", "readings", "alerts"} <= set(tables)
    assert revisions == [HEAD]
    assert await write_and_read(database_url) == "收到"


async def test_empty_database_url_has_no_tables(empty_database_url: str) -> None:
    assert_own_database(empty_database_url)
    assert await tables_and_revision(empty_database_url) == ([], [])
    assert await write_and_read(empty_database_url) == "收到"


@pytest.mark.parametrize("round", [1, 2])
async def test_a_copy_does_not_see_what_an_earlier_test_did(database_url: str, round: int):
    assert (await tables_and_revision(database_url))[1] == [HEAD]
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:  # spoil this copy: the next round must not notice
            await conn.execute(sa.text("DELETE FROM alembic_version"))
    finally:
        await engine.dispose()


def test_sqlite_url_is_a_file_in_the_test_directory(sqlite_url: str, tmp_path: Path) -> None:
    url = make_url(sqlite_url)
    assert url.drivername == "sqlite+aiosqlite"
    assert url.database == f"{tmp_path}/gateway.db"
    assert (tmp_path / "gateway.db").is_file()
