"""A message the database refuses must not block the messages behind it."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import sqlalchemy as sa

from gateway.alerts.notifiers.console import ConsoleNotifier
from gateway.app import Gateway
from gateway.ingest.mqtt import InboundMessage
from gateway.store.tables import dead_letters, readings
from tests.integration.harness import isolated_settings, register

T0 = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


async def test_a_refused_message_becomes_a_dead_letter_and_the_rest_is_stored(
    sqlite_url: str, unique_id: str
):
    gw = Gateway(
        isolated_settings("mqtt://127.0.0.1:1", sqlite_url, unique_id),
        notifier=ConsoleNotifier(io.StringIO()),
    )
    await gw.prepare()
    try:
        await register(gw)
        # A real refusal by the database (as a constraint or a too-long value would be).
        async with gw.db.begin() as conn:
            await conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON readings "
                    "WHEN NEW.device_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        batch = [
            InboundMessage(
                f"{unique_id}/homes/H001/{device}/telemetry", b'{"power_w": 5.0}', 1, n, False, T0
            )
            for n, device in enumerate(["plug-1", "poison", "plug-2"], start=1)
        ]
        await gw.pipeline.process_with_retry(batch)
        async with gw.db.connect() as conn:
            stored = (await conn.scalars(sa.select(readings.c.device_id))).all()
            letters = (await conn.execute(sa.select(dead_letters))).all()
        assert sorted(stored) == ["plug-1", "plug-2"]
        assert [(d.reason_code, d.topic.split("/")[3]) for d in letters] == [
            ("store_error", "poison")
        ]
    finally:
        await gw.close()


async def test_ids_too_long_for_the_store_are_dead_letters(sqlite_url: str, unique_id: str):
    gw = Gateway(
        isolated_settings("mqtt://127.0.0.1:1", sqlite_url, unique_id),
        notifier=ConsoleNotifier(io.StringIO()),
    )
    await gw.prepare()
    try:
        await register(gw)
        topic = f"{unique_id}/homes/H001/{'d' * 200}/telemetry"
        result = await gw.pipeline.process(
            [InboundMessage(topic, b'{"power_w": 5.0}', 1, 1, False, T0)]
        )
        assert [d.reason_code for d in result.dead_letters] == ["invalid_topic"]
    finally:
        await gw.close()
