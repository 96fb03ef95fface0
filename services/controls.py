"""Simulation controls of a service: mode, latency and a reject rate. Pure; no Kafka.

Latency is sampled from a log-normal distribution fitted to the two percentiles a
control gives (p50 = e^mu, p99 = e^(mu + z99 * sigma)): service times are skewed to
the right like that, and two numbers fix it. Without a latency control a service
answers at once, so benchmarks measure the switch and not the simulation.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from typing import Literal

from switch.contract.messages import Control

Mode = Literal["up", "down_forward", "down_drop"]
UP: Mode = "up"
DOWN_FORWARD: Mode = "down_forward"
DOWN_DROP: Mode = "down_drop"

Z99 = 2.3263478740408408  # the standard normal's 99th percentile
MAX_LATENCY_FACTOR = 10.0  # a sample is capped at 10 x p99, so one draw never stalls a batch


@dataclass(frozen=True, slots=True)
class ControlState:
    """What a control command has set. Frozen: a new command makes a new state."""

    mode: Mode = UP
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    reject_rate: float = 0.0

    def updated(self, control: Control) -> ControlState:
        """This state with the fields the command names changed; the rest stay."""
        state = self
        if control.mode is not None:
            state = replace(state, mode=control.mode)
        if control.latency_ms is not None:
            p50 = max(0.0, float(control.latency_ms.p50))
            p99 = max(p50, float(control.latency_ms.p99))
            state = replace(state, p50_ms=p50, p99_ms=p99)
        if control.reject_rate is not None:
            state = replace(state, reject_rate=min(1.0, max(0.0, float(control.reject_rate))))
        return state


class Controls:
    """A service's current controls and the seeded random source its draws come from."""

    def __init__(self, system: str, *, seed: int | None = None, state: ControlState | None = None):
        self.system = system.upper()
        self.state = state or ControlState()
        self._rng = random.Random(seed)

    @property
    def mode(self) -> Mode:
        return self.state.mode

    def apply(self, control: Control) -> bool:
        """Apply a command if it is addressed to this system; True if it was."""
        if control.system.upper() != self.system:
            return False
        self.state = self.state.updated(control)
        return True

    def sample_latency_s(self) -> float:
        """One service time, in seconds."""
        s = self.state
        if s.p50_ms <= 0.0:
            return 0.0
        if s.p99_ms <= s.p50_ms:
            return s.p50_ms / 1000.0
        mu = math.log(s.p50_ms)
        sigma = math.log(s.p99_ms / s.p50_ms) / Z99
        ms = self._rng.lognormvariate(mu, sigma)
        return min(ms, s.p99_ms * MAX_LATENCY_FACTOR) / 1000.0

    def should_reject(self) -> bool:
        """Draw whether this request gets a simulated reject."""
        rate = self.state.reject_rate
        if rate <= 0.0:
            return False
        return rate >= 1.0 or self._rng.random() < rate
