"""benchmarks/dashboard.py runs, small, on each database, and the overview it measures reports
the statuses its county was planned with."""

from __future__ import annotations

from benchmarks import dashboard


async def test_the_dashboard_benchmark_runs_on_a_small_county(database_url: str):
    result = await dashboard.measure(
        database_url, households_n=300, requests=1, seed=3, every_min=15
    )
    planned = result["data"]["planned_counts"]
    assert result["overview_counts"] == planned
    assert planned["total"] == 297, "1 % left the programme"
    assert all(planned[s] > 0 for s in ("alert", "checkin", "offline", "low_battery"))
    queries = result["queries"]
    assert queries["overview_admin"]["total"] == 297
    assert queries["overview_operator"]["total"] < 297
    assert queries["overview_admin_status_alert"]["total"] == planned["alert"]
    assert queries["series_7d"]["bytes"] > queries["series_24h"]["bytes"] > 0
