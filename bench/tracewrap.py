"""Run a Python module under tracemalloc, dumping a snapshot every N seconds (for soaks).

    python bench/tracewrap.py OUT_DIR EVERY_S -m switch.cli.main run router

Snapshots go to OUT_DIR/snap-<seconds>.pickle; compare two with `--diff A B`:

    python bench/tracewrap.py --diff OUT_DIR/snap-600.pickle OUT_DIR/snap-1800.pickle

With TRACEWRAP_KIND=heap it takes no snapshot (and does not slow the process): every N
seconds it appends one line to OUT_DIR/heap.log with the resident memory, the live
Python blocks (`sys.getallocatedblocks()`), pymalloc's arenas (from
`sys._debugmallocstats()`) and, every fifth line, the object types whose count grew
most since the first line. Live blocks flat while arenas or RSS grow is fragmentation or
memory outside Python's allocator; live blocks growing is a leak tracemalloc can name.
"""

from __future__ import annotations

import collections
import gc
import os
import runpy
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path


def _dump_forever(out: Path, every_s: float) -> None:
    t0 = time.monotonic()
    while True:
        time.sleep(every_s)
        snap = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)])
        snap.dump(str(out / f"snap-{time.monotonic() - t0:06.0f}.pickle"))


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _arenas() -> str:
    """pymalloc's arena counts, parsed from what `sys._debugmallocstats()` writes to fd 2."""
    saved = os.dup(2)
    with tempfile.TemporaryFile() as f:
        os.dup2(f.fileno(), 2)
        try:
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        f.seek(0)
        text = f.read().decode(errors="replace")
    keep = ("# arenas allocated current", "# arenas highwater mark", "Total")
    return " ".join(line.replace(" ", "") for line in text.splitlines() if line.startswith(keep))


def _heap_forever(out: Path, every_s: float) -> None:
    t0 = time.monotonic()
    first: collections.Counter[str] | None = None
    n = 0
    with open(out / "heap.log", "a") as log:
        while True:
            time.sleep(every_s)
            line = (f"{time.strftime('%H:%M:%S')} t={time.monotonic() - t0:.0f}s "
                    f"rss={_rss_mb():.1f}MB blocks={sys.getallocatedblocks()} {_arenas()}")
            if n % 5 == 0:
                counts = collections.Counter(type(o).__qualname__ for o in gc.get_objects())
                if first is None:
                    first = counts
                line += f" grown={(counts - first).most_common(6)}"
            n += 1
            log.write(line + "\n")
            log.flush()


def diff(a: str, b: str, top: int = 15) -> None:
    old, new = tracemalloc.Snapshot.load(a), tracemalloc.Snapshot.load(b)
    total_old = sum(s.size for s in old.statistics("filename"))
    total_new = sum(s.size for s in new.statistics("filename"))
    print(f"traced: {total_old / 2**20:.1f} MB -> {total_new / 2**20:.1f} MB")
    for stat in new.compare_to(old, "traceback")[:top]:
        frame = stat.traceback[-1] if len(stat.traceback) else None
        where = " <- ".join(f"{Path(f.filename).name}:{f.lineno}" for f in list(stat.traceback)[-4:])
        print(f"{stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {where or frame}")


def main() -> None:
    if sys.argv[1] == "--diff":
        diff(sys.argv[2], sys.argv[3])
        return
    out, every_s, flag, module, *rest = sys.argv[1:]
    assert flag == "-m"
    Path(out).mkdir(parents=True, exist_ok=True)
    if os.environ.get("TRACEWRAP_KIND") == "heap":
        threading.Thread(target=_heap_forever, args=(Path(out), float(every_s)), daemon=True).start()
    else:
        tracemalloc.start(int(os.environ.get("TRACEMALLOC_FRAMES", "6")))
        threading.Thread(target=_dump_forever, args=(Path(out), float(every_s)),
                         daemon=True).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
