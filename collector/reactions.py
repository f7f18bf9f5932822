"""How the service reacts to each poll outcome: one table, read by the poller, backoff, breaker and proxies.

A new outcome needs exactly one row here (a test checks every outcome has one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collector.outcomes import Outcome


@dataclass(frozen=True, slots=True)
class Reaction:
    healthy: bool = False  # the target works: reset its backoff, count toward snapshot sampling
    platform_trouble: bool = False  # counts toward the platform's circuit breaker
    keep_body: bool = False  # keep every response body: an operator needs it to see why
    rotate_proxy: bool = False  # the platform refuses this address: take the next proxy
    log_level: int = logging.WARNING  # the first time a target enters this outcome


_TRANSPORT = Reaction(platform_trouble=True)

REACTIONS: dict[Outcome, Reaction] = {
    Outcome.OK: Reaction(healthy=True, log_level=logging.INFO),
    Outcome.NOT_LIVE: Reaction(healthy=True, log_level=logging.INFO),
    Outcome.NOT_FOUND: Reaction(),
    Outcome.RATE_LIMITED: Reaction(platform_trouble=True, rotate_proxy=True),
    Outcome.BLOCKED: Reaction(platform_trouble=True, keep_body=True, rotate_proxy=True),
    Outcome.LOGIN_WALL: Reaction(keep_body=True),
    Outcome.TIMEOUT: _TRANSPORT,
    Outcome.NETWORK_ERROR: _TRANSPORT,
    Outcome.HTTP_ERROR: _TRANSPORT,
    Outcome.PARSE_FAILURE: Reaction(keep_body=True),
    # Our bug: keep the bodies for the fix, log loudly, and leave the platform's breaker alone.
    Outcome.ADAPTER_ERROR: Reaction(keep_body=True, log_level=logging.ERROR),
    Outcome.REFUSED: Reaction(),
}


def reaction(outcome: Outcome) -> Reaction:
    return REACTIONS[outcome]
