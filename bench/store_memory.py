"""What a service's SQLite page cache does to its resident memory (run by hand).

    .venv/bin/python bench/store_memory.py [--requests 30000] [--records 8000]
        [--cache-kib 32768 4096 2000]

For each page-cache size, a fresh child process opens a fresh store, seeds --records
records and applies --requests leg requests with the service's own rules (one batch of
25 per SQLite transaction, as the loop does: 20 % EIMs with a new small photo each, 80 %
QIMs of random records), and reports, every tenth of the run, its RSS (VmRSS) and the
bytes SQLite holds (sqlite3_memory_used). The cache fills as the store's pages are
touched, then stops: the growth a soak sees in a service's first minutes is this cache
filling, bounded by its size (RELIABILITY.md, "Soak").
"""

from __future__ import annotations

import argparse
import io
import json
import random
import subprocess
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child(cache_kib: int, requests: int, records_n: int) -> list[dict[str, float]]:
    from PIL import Image

    from services.population import generate
    from services.rules import apply_request
    from services.store import Store, sqlite_memory_used
    from switch.contract.internal import LegRequest
    from switch.contract.messages import EnterImage, QueryImage

    rng = random.Random(3)
    records = generate(records_n, 17)
    imts = ("M", "S") + ("I",) * 10
    out = []
    with tempfile.TemporaryDirectory() as d:
        seed = Store(Path(d) / "leads.sqlite3", "LEADS")
        seed.insert_records(records)
        seed.close()
        store = Store(Path(d) / "leads.sqlite3", "LEADS", cache_kib=cache_kib)
        eims = 0
        now = datetime.now(UTC)
        for i in range(0, requests, 25):
            with store.transaction():
                for j in range(i, min(i + 25, requests)):
                    if rng.random() < 0.2 and eims < 12 * len(records):
                        rec = records[eims % len(records)]
                        buf = io.BytesIO()
                        Image.new("RGB", (120, 150), (j % 256, (j >> 8) % 256, 90)).save(buf, "JPEG")
                        req: object = EnterImage(mid=f"m{j}", ori=rec.ori, lno=rec.lno,
                                                 imt=imts[eims // len(records)], doi="20250101",
                                                 image=buf.getvalue())
                        eims += 1
                    else:
                        rec = rng.choice(records)
                        req = QueryImage(mid=f"m{j}", ori=rec.ori, lno=rec.lno)
                    leg = LegRequest(cid=uuid.uuid4().hex, system="LEADS", deadline=0.0,
                                     request=req, timeout_s=10.0)  # type: ignore[arg-type]
                    apply_request(store, leg, now=now)
            if i % max(25, (requests // 10) // 25 * 25) == 0 or i + 25 >= requests:
                out.append({"requests": min(i + 25, requests), "rss_mb": round(rss_mb(), 1),
                            "sqlite_mb": round(sqlite_memory_used() / 2**20, 1),
                            "db_mb": round((Path(d) / "leads.sqlite3").stat().st_size / 2**20, 1)})
        store.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=30000)
    p.add_argument("--records", type=int, default=8000)
    p.add_argument("--cache-kib", type=int, nargs="+", default=[32768, 4096, 2000])
    p.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child, args.requests, args.records)))
        return
    for kib in args.cache_kib:
        res = subprocess.run([sys.executable, __file__, "--child", str(kib), "--requests",
                              str(args.requests), "--records", str(args.records)],
                             capture_output=True, text=True, check=True)
        rows = json.loads(res.stdout)
        print(f"cache_size {kib} KiB: " + "; ".join(
            f"{r['requests']:.0f} req: RSS {r['rss_mb']} MB, SQLite {r['sqlite_mb']} MB, db {r['db_mb']} MB"
            for r in rows), flush=True)


if __name__ == "__main__":
    main()
