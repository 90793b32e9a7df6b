"""How fast `iot-gateway replay` goes through a month of a neighbourhood's traffic.

A recording of --households simulated homes over --days days (the detection benchmark's
homes, incidents included; made once with `iot-gateway simulate --record` and kept in
--folder) is replayed by `iot-gateway replay` with its labels, into a throw-away SQLite
database, as an installer trying a threshold would. Reported: messages per second (median of
--rounds) and the alerts the replay opened per rule. With --compare-tree the same recording
is replayed by another checkout too (e.g. `git archive` of an earlier commit), alternately,
and the ratio of the medians is given; the alerts of both must be the same (per rule, and
line for line: `same_alert_lines`).

    python benchmarks/replay_speed.py --rounds 3 --compare-tree /tmp/before
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # when imported by the tests, not run
from trees import alternately, trees  # benchmarks/, this folder

SEED = 1
ROOT = Path(__file__).resolve().parent.parent


def record(households: int, days: int, folder: Path) -> Path:
    """The recording of these homes (made once: the same seed makes the same stream)."""
    path = folder / f"replay-{households}x{days}-seed{SEED}.jsonl"
    if not path.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "gateway.cli", "simulate", "--households"]
        command += [str(households), "--days", str(days), "--scenario", "benchmark"]
        command += ["--seed", str(SEED), "--record", str(path)]
        subprocess.run(command, check=True, capture_output=True)  # noqa: S603
    return path


def replay(recording: Path, tree: Path | None) -> dict[str, Any]:
    """One replay in a process of its own (from `tree` when given); its summary line."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree)  # ahead of this tree's editable install
    recording = recording.resolve()
    labels = recording.with_suffix(".labels.jsonl")
    command = [sys.executable, "-m", "gateway.cli", "replay", str(recording)]
    command += ["--labels", str(labels)]
    # `python -m` puts the working folder first on the path, ahead of PYTHONPATH: run in the
    # tree measured, or the other tree's replay would be this one's.
    where = tree if tree is not None else ROOT
    out = subprocess.run(  # noqa: S603
        command, env=env, cwd=where, capture_output=True, text=True, check=True
    )
    summary: dict[str, Any] = json.loads(out.stderr.strip().splitlines()[-1])
    # The alert lines themselves (stdout), to tell whether two trees printed the same.
    summary["alert_lines_sha256"] = hashlib.sha256(out.stdout.encode("utf-8")).hexdigest()
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--households", type=int, default=60)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--folder",
        type=Path,
        default=Path(tempfile.gettempdir()) / "replay-speed",
        help="where the recording is made once and kept",
    )
    parser.add_argument("--compare-tree", type=Path, help="another checkout to measure too")
    parser.add_argument("--out", type=Path, help="write the result here as JSON too")
    args = parser.parse_args()
    recording = record(args.households, args.days, args.folder)
    runs = alternately(trees(args.compare_tree), args.rounds, lambda tree: replay(recording, tree))
    result: dict[str, Any] = {
        "households": args.households,
        "days": args.days,
        "messages": runs["this tree"][0]["messages"],
        "load_average": os.getloadavg(),
    }
    for name, rs in runs.items():
        result[name] = {
            "msgs_per_s_median": statistics.median(r["msgs_per_s"] for r in rs),
            "msgs_per_s": [r["msgs_per_s"] for r in rs],
            "wall_s": [r["wall_s"] for r in rs],
            "alerts": rs[0]["alerts"],
            "alert_lines_sha256": rs[0]["alert_lines_sha256"],
        }
    if args.compare_tree:
        before = result[f"tree {args.compare_tree}"]
        after = result["this tree"]
        result["after_over_before"] = round(
            after["msgs_per_s_median"] / before["msgs_per_s_median"], 2
        )
        result["same_alerts"] = after["alerts"] == before["alerts"]
        result["same_alert_lines"] = after["alert_lines_sha256"] == before["alert_lines_sha256"]
    text = json.dumps(result, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
