"""The rules' state is saved a chunk of households at a time: each chunk's documents are made
as it is written, not all of a county's at once, and every household is still saved."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from gateway.care.households import HouseholdIn, create_household
from gateway.store import rule_settings
from gateway.store.rule_settings import load_rule_state, save_rule_state
from tests.integration.harness import HOUSEHOLD, core_with_household

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
HOMES = [f"H{n:03d}" for n in range(1, 8)]


async def test_a_save_makes_each_chunks_documents_as_it_writes_them(
    database_url: str, unique_id: str, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(rule_settings, "SAVE_CHUNK", 3)
    made = 0

    def documents() -> Iterator[tuple[str, dict[str, Any]]]:
        nonlocal made
        for k, hid in enumerate(HOMES):
            made += 1
            yield hid, {"heard": f"2026-11-30T08:{k:02d}:00+00:00", "water": [[k, 1.5]]}

    made_when_written: list[int] = []

    def written(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "rule_state" in statement and statement.lstrip().upper().startswith("INSERT"):
            made_when_written.append(made)

    async with core_with_household(database_url, unique_id, T0) as core:
        async with core.db.begin() as conn:
            for hid in HOMES[1:]:
                await create_household(
                    conn, HouseholdIn.model_validate(HOUSEHOLD | {"id": hid}), T0
                )
        async with core.db.begin() as conn:
            event.listen(conn.sync_connection, "before_cursor_execute", written)
            assert await save_rule_state(conn, documents(), T0) == len(HOMES)
        async with core.db.connect() as conn:
            saved = await load_rule_state(conn)

    assert made_when_written == [3, 6, 7], "a chunk's documents made, then written"
    assert {hid: saved[hid] for hid in HOMES} == {
        hid: {"heard": f"2026-11-30T08:{k:02d}:00+00:00", "water": [[k, 1.5]]}
        for k, hid in enumerate(HOMES)
    }
