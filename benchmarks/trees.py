"""Measuring this checkout against another (`--compare-tree`, e.g. a `git archive` of an earlier
commit), alternately: each measurement runs in a process of its own whose PYTHONPATH puts the
other tree ahead of this one's editable install."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

THIS_TREE = "this tree"


def trees(compare: Path | None) -> dict[str, Path | None]:
    """This tree (None: the installed checkout) and, when given, the other, by name."""
    found: dict[str, Path | None] = {THIS_TREE: None}
    if compare is not None:
        found[f"tree {compare}"] = compare.resolve()
    return found


def alternately(
    named: dict[str, Path | None], rounds: int, measure: Callable[[Path | None], T]
) -> dict[str, list[T]]:
    """`rounds` measurements of each tree, the trees taking turns (the machine's mood falls on
    both alike)."""
    runs: dict[str, list[T]] = {name: [] for name in named}
    for _ in range(rounds):
        for name, tree in named.items():
            runs[name].append(measure(tree))
    return runs
