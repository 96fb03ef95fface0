"""`switch gen`: a deterministic traffic file on seeded records."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from switch.cli.common import settings_from_args

HELP = """\
Generate a traffic file for `switch replay`: operator sessions on the records of
--records (the JSON lines of `switch seed --out FILE`, or <home>/records.jsonl written
by `switch up`), following the state bulletin: query the record, enter or modify an
image, re-query, sometimes cancel and enter again. Photos are made with Pillow at the
sizes of --image-kb (a few per size bucket, reused). A share of --invalid-rate requests
are invalid on purpose (bad DOI, bad ORI, wrong owner, unknown LNO, not an image,
missing field, garbage bytes). The same records and options give the same file.
Format: docs/COMMANDS-loadtest.md (JSON lines: header, images, one step per request).
"""


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("gen", parents=[common], help="generate a traffic file for switch replay",
                       description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--records", metavar="FILE",
                   help="records as JSON lines (default: <home>/records.jsonl)")
    p.add_argument("--count", type=int, required=True, metavar="N", help="number of requests")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    p.add_argument("--out", required=True, metavar="FILE", help="the traffic file to write")
    p.add_argument("--mix", default="QIM=0.5,EIM=0.25,MII=0.15,XIM=0.1", metavar="MKE=W,...",
                   help="share of each MKE among valid requests (default %(default)s)")
    p.add_argument("--invalid-rate", type=float, default=0.02, metavar="R",
                   help="share of invalid requests, 0 to 1 (default %(default)s)")
    p.add_argument("--image-kb", default="30:8", metavar="MEAN[:SD]",
                   help="photo size in KB, normal distribution (default %(default)s; "
                        "above ~60 KB photos are larger than the box and need sizing)")
    p.add_argument("--date", default="20250101", metavar="CCYYMMDD",
                   help="latest DOI/DOC used (default %(default)s, the population's reference "
                        "date, so the file does not depend on the day it is made)")
    p.add_argument("--sessions", type=int, default=50, metavar="N",
                   help="operator sessions open at once, interleaved (default %(default)s)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from switch.loadtest.gen import (
        Generator,
        GenError,
        GenOptions,
        describe,
        load_records,
        parse_image_kb,
        parse_mix,
        summary_line,
    )
    from switch.loadtest.traffic import write_traffic

    started = time.perf_counter()
    try:
        records_path = Path(args.records) if args.records else settings_from_args(args).home / "records.jsonl"
        options = GenOptions(
            count=args.count, seed=args.seed, mix=parse_mix(args.mix),
            invalid_rate=args.invalid_rate, image_kb=parse_image_kb(args.image_kb),
            date=args.date, sessions=args.sessions,
        )
        records = load_records(records_path)
        gen = Generator(records, options)
        traffic = gen.run()
    except GenError as exc:
        print(f"switch gen: error: {exc}", file=sys.stderr)
        return 2
    try:
        write_traffic(args.out, traffic, gen.image_lines())
    except OSError as exc:
        print(f"switch gen: error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    size = Path(args.out).stat().st_size
    print(f"switch gen: {summary_line(describe(traffic))}; {len(records)} records from "
          f"{records_path}; wrote {args.out} ({size / 1024:.0f} KiB) in "
          f"{time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0
