"""benchmarks/ingest_ratio.py runs, small: two processes on a shared subscription, on
PostgreSQL, with a QoS 0 backlog (which Mosquitto must be told to queue); and one process on
SQLite against another tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import ingest_ratio


@pytest.mark.mqtt
@pytest.mark.postgres
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


@pytest.mark.mqtt
def test_the_ingest_ratio_benchmark_compares_another_tree_small():
    # The default mode (one process, SQLite, QoS 1), with this very checkout as the other tree:
    # the before/after pattern the benchmark's README rows rely on.
    tree = Path(__file__).resolve().parents[2]
    backlog = ingest_ratio.Backlog(
        households=5, per_household=20, qos=1, processes=1, database_url=None
    )

    result = ingest_ratio.run(backlog, rounds=1, compare_tree=tree)

    assert (result["messages"], result["processes"], result["database"]) == (100, 1, "sqlite")
    for name in ("bare", "gateway", f"gateway@{tree}"):
        assert result[name]["median_msgs_per_s"] > 0
