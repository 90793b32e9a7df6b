"""benchmarks/first_seen.py runs, small, on each database, for each of its scenarios."""

from __future__ import annotations

import pytest

from benchmarks import first_seen


@pytest.mark.parametrize("scenario", first_seen.SCENARIOS)
async def test_the_first_seen_benchmark_runs_small(database_url: str, scenario: str):
    result = await first_seen.one(scenario, database_url, households=20, devices=3)
    assert result["messages"] == 60
    assert result["msgs_per_s"] > 0
