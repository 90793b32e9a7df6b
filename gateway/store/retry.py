"""Which database errors are worth waiting out, and how long to wait between tries."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

_TRANSIENT = (OperationalError, InterfaceError, OSError, TimeoutError)


def is_transient(exc: BaseException) -> bool:
    """Whether the database is down, busy or locked (try again); otherwise the error is about
    the data. A connection lost in the middle of a statement counts as down, whatever error
    the driver made of it (asyncpg's is a plain DBAPIError)."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, _TRANSIENT)


class Backoff:
    """Delays that double from `first_s` up to `most_s` seconds."""

    def __init__(self, first_s: float = 0.5, most_s: float = 30.0) -> None:
        self.delay = first_s
        self.most_s = most_s

    async def wait(self) -> None:
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.most_s)
