"""Scenario clock: real time scaled by a speed factor, or frozen at a fixed scenario instant."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class SimClock:
    """Maps wall time to scenario time; `freeze_at` pins elapsed seconds so bodies are reproducible."""

    speed: float = 1.0
    freeze_at: float | None = None
    start: float | None = None
    _monotonic_start: float = field(default_factory=time.monotonic, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError(f"speed must be positive, got {self.speed}")
        if self.start is None:
            self.start = time.time()

    def elapsed(self) -> float:
        """Scenario seconds since start (constant while frozen)."""
        if self.freeze_at is not None:
            return self.freeze_at
        # Monotonic, so a wall-clock step (NTP) cannot make counters run backwards.
        return (time.monotonic() - self._monotonic_start) * self.speed

    def epoch(self) -> float:
        """Unix seconds at scenario start (second 0)."""
        assert self.start is not None  # set in __post_init__
        return self.start

    def now(self) -> float:
        """Unix seconds of scenario time."""
        return self.epoch() + self.elapsed()
