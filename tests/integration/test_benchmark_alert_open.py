"""benchmarks/alert_open.py runs, small, on each database."""

from __future__ import annotations

from benchmarks import alert_open


async def test_the_alert_open_benchmark_runs_small(database_url: str):
    result = await alert_open.one(database_url, alerts=20)

    assert (result["alerts"], result["notifications"]) == (20, 20)  # one SMS to each visitor
    assert result["seconds"] > 0
