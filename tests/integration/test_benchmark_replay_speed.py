"""benchmarks/replay_speed.py runs, small: a recording made once, replayed by the CLI."""

from __future__ import annotations

from pathlib import Path

from benchmarks import replay_speed


def test_the_replay_speed_benchmark_runs_small(tmp_path: Path):
    recording = replay_speed.record(households=3, days=1, folder=tmp_path)
    assert replay_speed.record(households=3, days=1, folder=tmp_path) == recording  # kept

    summary = replay_speed.replay(recording, tree=None)

    with recording.open(encoding="utf-8") as lines:
        assert summary["messages"] == sum(1 for _ in lines)
    assert summary["households_registered"] == 3
    assert summary["msgs_per_s"] > 0
