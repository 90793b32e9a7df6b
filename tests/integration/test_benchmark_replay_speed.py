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


def test_the_other_tree_is_the_one_replaying(tmp_path: Path):
    """Its own gateway runs, not this checkout's (which `python -m` would find first)."""
    tree = tmp_path / "tree"
    (tree / "gateway").mkdir(parents=True)
    (tree / "gateway" / "__init__.py").write_text("")
    (tree / "gateway" / "cli.py").write_text(
        'import sys\nprint(\'{"messages": -1, "msgs_per_s": 1}\', file=sys.stderr)\n'
    )
    recording = tmp_path / "r.jsonl"
    recording.write_text("")

    summary = replay_speed.replay(recording, tree=tree)

    assert summary["messages"] == -1
