"""Messages that could not be used, kept with the reason so nothing is lost silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.paging import Page, Window, fetch_page
from gateway.store.tables import dead_letters

MAX_PAYLOAD_BYTES = 2048


@dataclass(frozen=True, slots=True)
class DeadLetter:
    topic: str
    payload: bytes
    reason_code: str
    reason: str
    received_at: datetime


def payload_text(payload: bytes) -> str:
    """The first 2 KB of a payload as text; bytes that are not UTF-8 are shown escaped."""
    text = payload[:MAX_PAYLOAD_BYTES].decode("utf-8", errors="backslashreplace")
    # PostgreSQL text cannot hold NUL.
    text = text.replace("\x00", "\\x00")
    return text + " [truncated]" if len(payload) > MAX_PAYLOAD_BYTES else text


async def insert_dead_letters(conn: AsyncConnection, letters: Sequence[DeadLetter]) -> None:
    if not letters:
        return
    await conn.execute(
        sa.insert(dead_letters),
        [
            {
                "topic": letter.topic[:512],
                "payload": payload_text(letter.payload),
                "reason_code": letter.reason_code,
                "reason": letter.reason[:1000],
                "received_at": letter.received_at,
            }
            for letter in letters
        ],
    )


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    id: int
    topic: str
    payload: str
    reason_code: str
    reason: str
    received_at: datetime


async def recent_dead_letters(
    conn: AsyncConnection, window: Window, *, reason_code: str | None = None
) -> Page[StoredDeadLetter]:
    """Newest first."""
    query = sa.select(dead_letters).order_by(dead_letters.c.id.desc())
    if reason_code is not None:
        query = query.where(dead_letters.c.reason_code == reason_code)
    return await fetch_page(conn, query, window, lambda row: StoredDeadLetter(**row._mapping))
