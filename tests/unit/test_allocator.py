"""Memory freed by the process is handed back to the system (glibc's malloc_trim)."""

from __future__ import annotations

import platform
from pathlib import Path

import pytest

from gateway.allocator import release_freed_memory

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc only")

BLOCK = 64 * 1024
"""Under glibc's mmap threshold: malloc's heap, not a mapping of its own."""


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_freed_below_a_block_still_in_use_is_handed_back():
    blocks = [b"x" * BLOCK for _ in range(1600)]  # 100 MB, written to: resident
    kept = [b"y" * BLOCK for _ in range(4)]  # above them in the heap: its top stays in use
    del blocks
    freed = resident_mb()
    assert release_freed_memory()
    assert resident_mb() < freed - 50, "the free pages below the kept blocks went back"
    assert all(len(k) == BLOCK for k in kept)
