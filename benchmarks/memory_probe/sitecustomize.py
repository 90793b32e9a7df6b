"""A look inside a running gateway's memory, for profiling only (issue 13's live gap).

Put this folder on the gateway's PYTHONPATH and name a folder in MEMPROBE_DIR; Python imports
this module at start-up, and it then answers SIGUSR1 by reading the command in
$MEMPROBE_DIR/cmd and writing `done` when it has carried it out:

- `report <label>`: <label>.json with VmRSS/VmHWM, smaps_rollup, glibc's `malloc_info` (XML,
  every heap), `sys._debugmallocstats`'s pool summary (CPython's arenas; empty while
  tracemalloc traces, its hooks standing in front of the pools), gc's object counts by
  type and, while tracing, tracemalloc's top lines and the gateway's own lines;
- `trace [frames]`: start tracemalloc (slows ingest about 20 times at 6 frames);
- `trim`: call glibc's malloc_trim(0); trim.json has the memory before and after.

    PYTHONPATH=benchmarks/memory_probe MEMPROBE_DIR=/tmp/probe iot-gateway run &
    echo "report restart" > /tmp/probe/cmd; kill -USR1 $!

Without MEMPROBE_DIR it does nothing. The handler runs on the main thread between bytecodes,
as the event loop allows.
"""

from __future__ import annotations

import os

if os.environ.get("MEMPROBE_DIR"):
    import collections
    import ctypes
    import gc
    import json
    import signal
    import sys
    import time
    import tracemalloc
    from pathlib import Path
    from typing import Any

    FOLDER = Path(os.environ["MEMPROBE_DIR"])
    LIBC = ctypes.CDLL(None)
    LIBC.fopen.restype = ctypes.c_void_p
    POOL_LINES = ("arena", "bytes in", "unused pools", "lost to")

    def _fields(path: str, keys: tuple[str, ...] | None = None) -> dict[str, str]:
        found = {}
        for line in Path(path).read_text().splitlines():
            key, sep, value = line.partition(":")
            if sep and (keys is None or key in keys):
                found[key] = value.strip()
        return found

    def _malloc_info() -> str:
        path = FOLDER / "malloc_info.xml"
        stream = LIBC.fopen(str(path).encode(), b"w")
        LIBC.malloc_info(0, ctypes.c_void_p(stream))
        LIBC.fclose(ctypes.c_void_p(stream))
        return path.read_text()

    def _pools() -> list[str]:
        """sys._debugmallocstats writes to the C stderr: fd 2 pointed at a file meanwhile."""
        path = FOLDER / "debugmallocstats.txt"
        sys.stderr.flush()
        saved = os.dup(2)
        out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(out, 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(out)
        lines = path.read_text().splitlines()
        return [line for line in lines if any(k in line for k in POOL_LINES)]

    def _traced() -> dict[str, Any]:
        current, peak = tracemalloc.get_traced_memory()
        snapshot = tracemalloc.take_snapshot()
        ours: collections.Counter[str] = collections.Counter()
        for trace in snapshot.traces:
            frame = next((f for f in reversed(trace.traceback) if "/gateway/" in f.filename), None)
            if frame is None:
                ours["(other)"] += trace.size
            else:
                ours[f"{frame.filename.split('/gateway/')[-1]}:{frame.lineno}"] += trace.size
        mb = 2**20
        return {
            "current_mb": round(current / mb, 2),
            "peak_mb": round(peak / mb, 2),
            "top_lines": [
                [str(s.traceback), round(s.size / mb, 2), s.count]
                for s in snapshot.statistics("lineno")[:30]
            ],
            "gateway_lines": [[k, round(v / mb, 2)] for k, v in ours.most_common(30)],
        }

    def _report(label: str) -> None:
        gc.collect()
        found: dict[str, Any] = {
            "label": label,
            "time": time.time(),
            "status": _fields("/proc/self/status", ("VmRSS", "VmHWM", "RssAnon", "Threads")),
            "smaps_rollup": _fields("/proc/self/smaps_rollup"),
            "malloc_info": _malloc_info(),
            "pymalloc": _pools(),
        }
        objects = gc.get_objects()
        found["gc_objects"] = len(objects)
        found["gc_types"] = collections.Counter(type(o).__name__ for o in objects).most_common(25)
        del objects
        if tracemalloc.is_tracing():
            found["tracemalloc"] = _traced()
        (FOLDER / f"{label}.json").write_text(json.dumps(found, indent=1))

    def _answer(signum: int, frame: Any) -> None:
        command = (FOLDER / "cmd").read_text().split()
        if command[0] == "report":
            _report(command[1])
        elif command[0] == "trace":
            tracemalloc.start(int(command[1]) if len(command) > 1 else 6)
        elif command[0] == "trim":
            before = _fields("/proc/self/status", ("VmRSS", "VmHWM"))
            LIBC.malloc_trim(0)
            after = _fields("/proc/self/status", ("VmRSS", "VmHWM"))
            (FOLDER / "trim.json").write_text(json.dumps({"before": before, "after": after}))
        (FOLDER / "done").write_text(" ".join(command))

    signal.signal(signal.SIGUSR1, _answer)
