"""Micro-benchmark of parse_request (decode + validate), one process, one thread.

Run: .venv/bin/python bench/bench_validate.py [--seconds S]
Prints requests per second and microseconds per request, best of 5 rounds, for:
a typical EIM whose image is only a few bytes (the field checks without image cost),
the same EIM with a 30 KB image, a rejected EIM (three bad fields), and unreadable input.
The target is 100,000 per second for the first.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import time
from collections.abc import Callable

from switch.contract.validate import ContractError, parse_request

BASE = {
    "mid": "load-000001:42",
    "mke": "EIM",
    "ori": "IL0160000",
    "term": "T042",
    "lno": "X17A4394",
    "imt": "M",
    "doi": "20230216",
    "mis": "annual photo",
}


def _encode(extra: dict[str, str]) -> bytes:
    return json.dumps({**BASE, **extra}, separators=(",", ":")).encode()


def _accept(raw: bytes) -> Callable[[], object]:
    return lambda: parse_request(raw)


def _reject(raw: bytes) -> Callable[[], object]:
    def run() -> object:
        try:
            parse_request(raw)
        except ContractError as exc:
            return exc
        raise AssertionError("expected a reject")

    return run


def measure(fn: Callable[[], object], seconds: float) -> float:
    """Best rate over 5 rounds of about `seconds` / 5 each."""
    n = 100
    while True:  # calibrate
        start = time.perf_counter()
        for _ in range(n):
            fn()
        took = time.perf_counter() - start
        if took > 0.05:
            break
        n *= 4
    per_round = max(1, int(n * (seconds / 5) / took))
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(per_round):
            fn()
        best = max(best, per_round / (time.perf_counter() - start))
    return best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per case (default 2)")
    args = parser.parse_args()
    tiny = base64.b64encode(b"\xff\xd8\xff\xd9").decode()
    image_30k = base64.b64encode(os.urandom(30 * 1024)).decode()
    cases = {
        "EIM, 4-byte image (no real image)": _accept(_encode({"image": tiny})),
        "EIM, 30 KB image": _accept(_encode({"image": image_30k})),
        "EIM rejected, 3 bad fields": _reject(
            _encode({"image": tiny, "lno": "X17A439", "doi": "20231345", "imt": "P"})
        ),
        "unreadable (not JSON)": _reject(b"EIM.IL0160000.LNO/X17A4394.IMT/M.DOI/20230216."),
    }
    width = max(len(name) for name in cases)
    for name, fn in cases.items():
        rate = measure(fn, args.seconds)
        print(f"{name:<{width}}  {rate:>12,.0f} /s  {1e6 / rate:>8.2f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
