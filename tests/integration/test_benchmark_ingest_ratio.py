"""benchmarks/ingest_ratio.py runs, small, in its new modes: two processes on a shared
subscription, on PostgreSQL, with a QoS 0 backlog (which Mosquitto must be told to queue)."""

from __future__ import annotations

import pytest

from benchmarks import ingest_ratio

pytestmark = [pytest.mark.mqtt, pytest.mark.postgres]


def test_the_ingest_ratio_benchmark_runs_two_processes_small(postgres_url: str):
    backlog = ingest_ratio.Backlog(
        households=6, per_household=20, qos=0, processes=2, database_url=postgres_url
    )

    # Every drain must take the whole backlog (the gateway's stored readings are counted too),
    # or run() raises.
    result = ingest_ratio.run(backlog, rounds=1)

    assert (result["messages"], result["processes"], result["qos"]) == (120, 2, 0)
    assert result["database"] == "postgresql"
    for name in ("bare", "gateway"):
        assert result[name]["median_msgs_per_s"] > 0
    assert 0 < result["gateway"]["ratio_to_bare"] < 10
