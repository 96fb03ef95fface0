"""`switch seed`: a deterministic synthetic record population in both stores, as JSON lines."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import msgspec

from switch.cli.common import settings_from_args


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser(
        "seed",
        parents=[common],
        help="create a synthetic record population in the LEADS and NCIC stores",
        description=(
            "Create a deterministic synthetic record population (the same --seed gives the "
            "same records) in the LEADS store (every record) and the NCIC store (SOR records), "
            "under SWITCH_HOME, and write it as JSON lines (lno, rtype, nic, ori, nam, sex, "
            "dob) to --out or standard output. Records already on file are left alone. "
            "A running LEADS service publishes new records to the record directory."
        ),
    )
    p.add_argument("--count", type=int, required=True, metavar="N", help="number of records")
    p.add_argument("--seed", type=int, default=1, metavar="S", help="random seed (default 1)")
    p.add_argument(
        "--out", metavar="FILE", help="write the JSON lines here (default: standard output)"
    )
    p.add_argument(
        "--sor-share",
        type=float,
        default=0.85,
        metavar="F",
        help="share of sex-offender (SOR) records, the rest VOAY/murderer (default 0.85)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from services.seeding import seed_stores

    if args.count < 0:
        print("switch seed: error: --count must be 0 or more", file=sys.stderr)
        return 2
    if not 0.0 <= args.sor_share <= 1.0:
        print("switch seed: error: --sor-share must be between 0 and 1", file=sys.stderr)
        return 2
    settings = settings_from_args(args)
    started = time.perf_counter()
    entries = seed_stores(settings, args.count, args.seed, args.sor_share)
    encoder = msgspec.json.Encoder()
    lines = b"".join(encoder.encode(e) + b"\n" for e in entries)
    if args.out:
        with open(args.out, "wb") as f:
            f.write(lines)
    else:
        try:
            sys.stdout.buffer.write(lines)
            sys.stdout.buffer.flush()
        except BrokenPipeError:  # `switch seed ... | head`: the reader has what it wanted
            pass
    sor = sum(1 for e in entries if e.rtype == "SOR")
    print(
        f"switch seed: {len(entries)} records ({sor} SOR, {len(entries) - sor} VOAY), "
        f"seed {args.seed}, stores under {settings.home / 'stores'}, "
        f"{time.perf_counter() - started:.2f} s",
        file=sys.stderr,
    )
    return 0
