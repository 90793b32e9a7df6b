"""The database engine and schema migrations (Alembic), for SQLite and PostgreSQL alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


class DatabaseUnusable(Exception):
    """The configured database cannot be used; the message says why in one line."""


def create_engine(url: str, *, echo: bool = False) -> AsyncEngine:
    """An async engine; for SQLite, the file's folder is created and WAL mode switched on."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return _server_engine(url, echo=echo)
    if parsed.database and parsed.database != ":memory:":
        _prepare_sqlite_path(Path(parsed.database), parsed.render_as_string(hide_password=True))
    engine = create_async_engine(url, echo=echo, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL lets the API read while ingest writes; foreign keys are off by default in SQLite.
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


def _server_engine(url: str, *, echo: bool) -> AsyncEngine:
    """An engine that does not hand out a connection the server has closed.

    A server restart or a terminated backend closes the pool's connections. SQLAlchemy's
    `pool_pre_ping` finds them by asking the server on every checkout, which asyncpg does in
    three round trips (BEGIN, a query, ROLLBACK): ingest checks out a connection for each batch
    and the detector for each read, so that cost was paid a few hundred times a second. The
    driver already knows a connection whose server closed it (it saw the end of the stream);
    such a connection is replaced at checkout (SQLAlchemy's documented pessimistic handling by
    `DisconnectionError`). One the network lost without a word fails its first statement, and
    SQLAlchemy then replaces the whole pool; callers retry transient errors.
    """
    engine = create_async_engine(url, echo=echo)

    @event.listens_for(engine.sync_engine, "checkout")
    def _drop_closed(_dbapi: Any, record: Any, _proxy: Any) -> None:
        driver = record.driver_connection
        if driver is not None and driver.is_closed():
            raise sa.exc.DisconnectionError("the server closed this connection")

    return engine


def _prepare_sqlite_path(path: Path, where: str) -> None:
    """Create the file's folder; refuse a path sqlite could not open, before it tries.

    A failed connect leaves aiosqlite's worker thread to report on a closed event loop: a
    traceback after the one-line error.
    """
    if path.is_dir():
        raise DatabaseUnusable(f"cannot use the database {where}: {path} is a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseUnusable(
            f"cannot use the database {where}: cannot create folder "
            f"{exc.filename or path.parent}: {exc.strerror or exc}"
        ) from None


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _upgrade(connection: sa.Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent; run at every start)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade, revision)


async def ping(conn: AsyncConnection) -> None:
    await conn.execute(sa.text("SELECT 1"))
