"""Run a Python module under tracemalloc, dumping a snapshot every N seconds (for soaks).

    python bench/tracewrap.py OUT_DIR EVERY_S -m switch.cli.main run router

Snapshots go to OUT_DIR/snap-<seconds>.pickle; compare two with `--diff A B`:

    python bench/tracewrap.py --diff OUT_DIR/snap-600.pickle OUT_DIR/snap-1800.pickle
"""

from __future__ import annotations

import os
import runpy
import sys
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
    tracemalloc.start(int(os.environ.get("TRACEMALLOC_FRAMES", "6")))
    threading.Thread(target=_dump_forever, args=(Path(out), float(every_s)), daemon=True).start()
    sys.argv = [module, *rest]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
