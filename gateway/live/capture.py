"""Hears what each transaction noted (gateway/store/changes.py), once it is committed.

A connection's notes are opened when it is checked out of the pool, kept by a commit, dropped by
a rollback, and handed to the sink when the commit is surely done: when the connection goes back
to the pool, or when its next transaction begins. Handing them over at the commit itself would
let a listener refetch before the commit is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.store.changes import NOTES_KEY, Notes

log = logging.getLogger(__name__)

COMMITTED_KEY = "gateway.changes.committed"

Sink = Callable[[Notes], None]


class CommitCapture:
    """Engine hooks that hand every committed transaction's notes to `sink`."""

    def __init__(self, engine: AsyncEngine, sink: Sink) -> None:
        self.engine = engine.sync_engine
        self.sink = sink
        self._hooks: list[tuple[str, Callable[..., None]]] = [
            ("checkout", self._checkout),
            ("checkin", self._checkin),
            ("begin", self._begin),
            ("commit", self._commit),
            ("rollback", self._rollback),
        ]

    def install(self) -> None:
        for name, hook in self._hooks:
            event.listen(self.engine, name, hook)

    def _checkout(self, _dbapi: Any, record: Any, _proxy: Any) -> None:
        record.info[NOTES_KEY] = Notes()

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        if record is None:
            return
        self._hand_over(record.info)
        record.info.pop(NOTES_KEY, None)

    def _begin(self, conn: Connection) -> None:
        self._hand_over(conn.info)  # the previous transaction's commit has returned

    def _commit(self, conn: Connection) -> None:
        pending = conn.info.get(NOTES_KEY)
        if not pending:
            return
        committed = conn.info.setdefault(COMMITTED_KEY, Notes())
        committed.absorb(pending)
        conn.info[NOTES_KEY] = Notes()

    def _rollback(self, conn: Connection) -> None:
        if conn.invalidated:
            # Its DBAPI connection is gone (a query cancelled, a lost server), and its pool
            # checkin drops the uncommitted notes; `conn.info` would raise PendingRollbackError
            # here, in place of the error that invalidated it, out of close() itself.
            return
        if conn.info.get(NOTES_KEY):
            conn.info[NOTES_KEY] = Notes()

    def _hand_over(self, info: dict[Any, Any]) -> None:
        committed = info.pop(COMMITTED_KEY, None)
        if not committed:
            return
        try:
            self.sink(committed)
        except Exception:  # committed already: a failing listener must not fail the caller
            log.exception("live feed: could not take committed changes")
