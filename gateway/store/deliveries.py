"""The saved keys of recently committed MQTT messages, per session (client id)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.dialect import upsert
from gateway.store.tables import mqtt_deliveries

Key = tuple[int, str]


async def save_delivery_keys(
    conn: AsyncConnection, client_id: str, keys: list[Key], now: datetime
) -> None:
    stmt = upsert(conn, mqtt_deliveries).values(
        client_id=client_id, keys=[list(k) for k in keys], updated_at=now
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["client_id"],
            set_={"keys": stmt.excluded["keys"], "updated_at": stmt.excluded.updated_at},
        )
    )


async def load_delivery_keys(conn: AsyncConnection, client_id: str) -> list[Key]:
    """The saved keys; what cannot be read is left out (they only prevent duplicates)."""
    saved = await conn.scalar(
        sa.select(mqtt_deliveries.c["keys"]).where(mqtt_deliveries.c.client_id == client_id)
    )
    keys: list[Key] = []
    for item in saved if isinstance(saved, list) else []:
        if isinstance(item, list) and len(item) == 2:
            mid, value = item
            if isinstance(mid, int) and isinstance(value, str):
                keys.append((mid, value))
    return keys
