"""Memory the process has freed, handed back to the system where the C library allows it.

Blocks larger than CPython's small-object pools (dict tables, long strings, SQLite's pages in
aiosqlite's thread) come from glibc's malloc, whose heaps give freed memory back to the system
only from their top: a block still in use above keeps everything freed below it resident.
Measured at 100,000 devices on SQLite (benchmarks/memory.py's data, a probe in the process,
2026-12-01): once every device had reported again, glibc's heaps held 23 MB freed but
resident (7 MB in the main heap, 10.5 MB in one thread's arena: aiosqlite runs each connection
in a thread of its own), and `malloc_trim(0)` gave 12.7 MB of resident memory back (0.13 KB a
device; 8 ms for 100 MB freed, well under a millisecond when there is little). The thread
arenas are few (six) and the rest of them small, so capping their number (M_ARENA_MAX) would
not help. CPython's own pools keep what they keep (an arena is returned only when wholly
empty); this does not touch them.

The gateway calls `release_freed_memory()` once after each periodic save of the rules' state,
the largest transient work it does on a schedule. Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import functools
import platform
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    if platform.libc_ver()[0] != "glibc":
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # glibc's, in the process already
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory() -> bool:
    """Hand the C heaps' free pages back to the system (glibc); whether any were."""
    trim = _malloc_trim()
    if trim is None:
        return False
    return bool(trim(0))
