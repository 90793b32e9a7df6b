"""Python's cyclic garbage collector, set for a service that makes objects fast and must not
pause while an alarm waits.

Ingest makes a few objects per reading (the message, its readings, the rows), almost all freed
by reference counting as soon as the batch is stored. CPython's default first threshold (700
container objects) still runs a young collection every few hundred readings, and every tenth
of every tenth a full one, which walks every object the process holds. Measured on two
workers draining 50,000 readings into PostgreSQL (benchmarks/ingest_ratio.py with the
collector's callbacks timed, 2026-12-02): with the defaults each worker spent 0.26-0.95 s of
its 3.5-5.7 s of CPU collecting (230-390 young collections, 1-3 full ones), and its longest
pause was 157-414 ms, an alarm's whole latency budget; with a first threshold of 10,000,
0.02-0.06 s (3-12 young collections, no full one) and 8-13 ms at most. The objects waiting
for a young collection are a few megabytes at most.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000
"""New container objects (net of those freed) before a young collection; CPython's is 700."""


def tune() -> None:
    """Collect young objects less often; the older generations' ratios stay CPython's."""
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
