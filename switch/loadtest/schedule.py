"""Open-model send times, unique mids and placeholders: the pure half of replay.

Open model: every request has a send time fixed before the run (its slot) and goes out
then, whatever the replies are doing; latency is measured from the slot, not from the
moment the request actually left, so a switch (or a load generator) that falls behind
shows as latency instead of hiding it (coordinated omission, after Gil Tene and wrk2).
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections.abc import Mapping, Sequence

import msgspec

from switch.errors import SwitchError
from switch.loadtest.traffic import IMG_PREFIX, IMN_PREFIX, Step

MID_MAX = 64
ARRIVALS = ("poisson", "uniform")


class ScheduleError(SwitchError):
    """Options that do not make a schedule."""


class Unresolvable(SwitchError):
    """A placeholder whose value is not known (the step it names got no IMN)."""


def uniform_offsets(n: int, rate: float) -> list[float]:
    """Constant spacing: request i at i / rate seconds."""
    return [i / rate for i in range(n)]


def poisson_offsets(n: int, rate: float, seed: int = 1) -> list[float]:
    """A Poisson process: exponential gaps of mean 1 / rate, seeded (the same seed,
    the same schedule). The first request goes at 0."""
    rng = random.Random(seed)
    out: list[float] = []
    t = 0.0
    for _ in range(n):
        out.append(t)
        t += rng.expovariate(rate)
    return out


def original_offsets(steps: Sequence[Step], speed: float = 1.0) -> list[float]:
    """The captured send times (`t`), divided by `speed` (2 = twice as fast).
    Steps without `t` keep the previous step's time."""
    out: list[float] = []
    first: float | None = None
    last = 0.0
    for step in steps:
        if step.t is not None:
            if first is None:
                first = step.t
            last = (step.t - first) / speed
        out.append(max(last, out[-1]) if out else last)
    return out


def plan(
    steps: Sequence[Step],
    *,
    rate: float | None = None,
    count: int | None = None,
    duration: float | None = None,
    arrivals: str = "poisson",
    seed: int = 1,
    original_timing: bool = False,
    speed: float = 1.0,
) -> tuple[list[Step], list[float]]:
    """The steps to send and their offsets in seconds from the start.

    With a rate: `count` steps, or rate x `duration`, or every step; never more than the
    file has. With original timing: the captured times scaled by `speed`, cut at
    `duration` or `count`.
    """
    if count is not None and count < 0:
        raise ScheduleError("--count must be 0 or more")
    if duration is not None and duration <= 0:
        raise ScheduleError("--duration must be positive")
    if original_timing:
        if speed <= 0:
            raise ScheduleError("--speed must be positive")
        offsets = original_offsets(steps, speed)
        n = len(steps)
        if count is not None:
            n = min(n, count)
        if duration is not None:
            n = min(n, sum(1 for o in offsets if o < duration))
        return list(steps[:n]), offsets[:n]
    if rate is None or rate <= 0:
        raise ScheduleError("--rate must be positive (or use --original-timing)")
    if arrivals not in ARRIVALS:
        raise ScheduleError(f"--arrivals {arrivals!r}: one of {', '.join(ARRIVALS)}")
    n = len(steps)
    if count is not None:
        n = min(n, count)
    elif duration is not None:
        n = min(n, round(rate * duration))
    offsets = uniform_offsets(n, rate) if arrivals == "uniform" else poisson_offsets(n, rate, seed)
    return list(steps[:n]), offsets


def new_run_id() -> str:
    """A short id appended to every mid of one run (6 hex digits)."""
    return secrets.token_hex(3)


def unique_mid(mid: str, run_id: str) -> str:
    """`mid.run_id`, within the contract's 64 characters (a long mid is replaced by a
    hash of itself, which stays unique)."""
    out = f"{mid}.{run_id}"
    if len(out) <= MID_MAX:
        return out
    digest = hashlib.sha1(mid.encode()).hexdigest()[:24]
    return f"{digest}.{run_id}"


_encoder = msgspec.json.Encoder()


def render(
    step: Step,
    run_id: str,
    imns: Mapping[str, str | None],
    images: Mapping[str, str],
) -> tuple[bytes, str | None]:
    """The bytes to send for `step` and the mid its reply will carry.

    Raises Unresolvable when an `$imn:` placeholder names a step without an IMN.
    """
    if step.raw is not None:
        if step.raw_mid is None:
            return step.raw, None
        raw_mid = unique_mid(step.raw_mid, run_id)
        old = b'"mid":"' + step.raw_mid.encode() + b'"'
        return step.raw.replace(old, b'"mid":"' + raw_mid.encode() + b'"', 1), raw_mid
    assert step.request is not None
    request = dict(step.request)
    original = request.get("mid")
    mid: str | None = None
    if isinstance(original, str):
        mid = unique_mid(original, run_id)
        request["mid"] = mid
    image = request.get("image")
    if isinstance(image, str) and image.startswith(IMG_PREFIX):
        request["image"] = images[image[len(IMG_PREFIX):]]
    imn = request.get("imn")
    if isinstance(imn, str) and imn.startswith(IMN_PREFIX):
        value = imns.get(imn[len(IMN_PREFIX):])
        if value is None:
            raise Unresolvable(imn)
        request["imn"] = value
    return _encoder.encode(request), mid


def kafka_key(step: Step) -> bytes | None:
    """The step's key, else the request's ORI (CONTRACT.md: ORI or LNO recommended)."""
    if step.key is not None:
        return step.key.encode()
    if step.request is not None:
        ori = step.request.get("ori")
        if isinstance(ori, str):
            return ori.encode()
    return None
