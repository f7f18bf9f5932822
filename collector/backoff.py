"""Reactions to failing polls: a per-target capped, jittered backoff and a per-platform circuit breaker.

The scheduler asks `hold_off` before starting a poll; the poller reports every outcome. A target that
keeps failing is polled less often (up to `max_backoff`) and back at its own interval after one
success; `Retry-After` is a floor. When many polls of one platform fail in a row the circuit opens:
no poll of that platform starts until a single half-open probe succeeds. In a fleet an opening is
shared: each replica holds the circuit open as long as the one that opened it (collector/fleet_budget.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from collector.clock import SYSTEM_CLOCK, Clock
from collector.outcomes import Outcome
from collector.reactions import REACTIONS

HEALTHY = frozenset(o for o, r in REACTIONS.items() if r.healthy)
# What says the platform (not one page or one target) is in trouble.
PLATFORM_TROUBLE = frozenset(o for o, r in REACTIONS.items() if r.platform_trouble)


class TargetBackoff:
    def __init__(
        self, max_backoff: float, rng: random.Random | None = None, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.max_backoff = max_backoff
        self.rng = rng or random.Random()
        self.clock = clock
        self._failures: dict[str, int] = {}
        self._not_before: dict[str, float] = {}

    def record(self, target: str, interval: float, outcome: Outcome, retry_after: float | None) -> float:
        """Register a poll's outcome; returns the extra delay now imposed on the target (0 when healthy)."""
        now = self.clock.monotonic()
        if outcome in HEALTHY:
            self._failures.pop(target, None)
            self._not_before.pop(target, None)
            return 0.0
        streak = self._failures[target] = self._failures.get(target, 0) + 1
        # The first failure keeps the normal cadence; then double per failure, jittered, capped.
        delay = 0.0 if streak == 1 else min(self.max_backoff, interval * 2 ** (streak - 1))
        delay *= self.rng.uniform(0.8, 1.0)
        if retry_after is not None:
            delay = max(delay, retry_after)
        self._not_before[target] = now + delay
        return delay

    def wait(self, target: str) -> float:
        return max(0.0, self._not_before.get(target, 0.0) - self.clock.monotonic())

    def forget(self, target: str) -> None:
        self._failures.pop(target, None)
        self._not_before.pop(target, None)

    def failures(self, target: str) -> int:
        return self._failures.get(target, 0)


class CircuitState(IntEnum):
    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(slots=True)
class _Circuit:
    state: CircuitState = CircuitState.CLOSED
    consecutive: int = 0
    opened_at: float = 0.0
    probing: bool = False


class CircuitBreaker:
    def __init__(
        self,
        thresholds: dict[str, tuple[int, float]],
        on_change: Callable[[str, CircuitState], None] = lambda _p, _s: None,
        clock: Clock = SYSTEM_CLOCK,
        on_open: Callable[[str, float], None] = lambda _p, _s: None,
    ) -> None:
        self.thresholds = thresholds  # platform -> (consecutive failures to open, seconds before a probe)
        self.on_change = on_change
        self.clock = clock
        self.on_open = on_open  # this process's own failures opened the circuit for so many seconds
        self._circuits: dict[str, _Circuit] = {}

    def state(self, platform: str) -> CircuitState:
        return self._circuit(platform).state

    def wait(self, platform: str) -> float:
        """0 when a poll of the platform may start now (and takes the half-open probe slot)."""
        circuit = self._circuit(platform)
        if circuit.state is CircuitState.CLOSED:
            return 0.0
        if circuit.state is CircuitState.OPEN:
            remaining = circuit.opened_at + self.thresholds[platform][1] - self.clock.monotonic()
            if remaining > 0:
                return remaining
            self._set(platform, circuit, CircuitState.HALF_OPEN)
        if circuit.probing:
            return 1.0
        circuit.probing = True
        return 0.0

    def record(self, platform: str, outcome: Outcome) -> None:
        circuit = self._circuit(platform)
        if outcome not in PLATFORM_TROUBLE:
            circuit.consecutive = 0
            circuit.probing = False
            if circuit.state is not CircuitState.CLOSED:
                self._set(platform, circuit, CircuitState.CLOSED)
            return
        circuit.consecutive += 1
        failures_to_open = self.thresholds[platform][0]
        if circuit.state is CircuitState.HALF_OPEN or circuit.consecutive >= failures_to_open:
            circuit.probing = False
            circuit.opened_at = self.clock.monotonic()
            if circuit.state is not CircuitState.OPEN:
                self._set(platform, circuit, CircuitState.OPEN)
                self.on_open(platform, self.thresholds[platform][1])

    def hold_open(self, platform: str, seconds: float) -> None:
        """Open the circuit for at least `seconds` (another replica's failures opened it fleet-wide)."""
        circuit = self._circuit(platform)
        opened_at = self.clock.monotonic() + seconds - self.thresholds[platform][1]
        if circuit.state is CircuitState.OPEN:
            circuit.opened_at = max(circuit.opened_at, opened_at)
            return
        circuit.probing = False
        circuit.opened_at = opened_at
        self._set(platform, circuit, CircuitState.OPEN)

    def _circuit(self, platform: str) -> _Circuit:
        return self._circuits.setdefault(platform, _Circuit())

    def _set(self, platform: str, circuit: _Circuit, state: CircuitState) -> None:
        circuit.state = state
        self.on_change(platform, state)
