"""The collector's young threshold is raised; its older generations keep CPython's ratios."""

from __future__ import annotations

import json
import subprocess
import sys


def test_tune_raises_only_the_young_threshold():
    # In a process of its own: the test process's collector stays as it is.
    code = (
        "import gc, json; before = gc.get_threshold(); from gateway import collector; "
        "collector.tune(); print(json.dumps([before, gc.get_threshold()]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    assert after == [10_000, *before[1:]]
    assert before[0] < 10_000
