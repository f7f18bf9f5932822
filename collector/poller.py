"""The core wrapper around one adapter poll: time it, classify it, stamp samples, keep raw bodies.

Adapters never import prometheus_client or the store; this is the one place a poll's result becomes
samples, metrics, log lines and a record for the writer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from collector.adapters import get_adapter
from collector.api import Adapter, KindSpec, PollContext, PollRecord, RawResponse, TargetConfig
from collector.backoff import CircuitBreaker, CircuitState, TargetBackoff
from collector.config import Config
from collector.http import HttpClient, HttpFetcher
from collector.limits import HostLimiter, HostRule, ProxyRotation
from collector.metrics import LiveState, SelfMetrics
from collector.outcomes import AdapterError, Outcome, ParseFailure, PollError
from collector.reactions import REACTIONS
from collector.target_state import canonical, definition_key, envelope, hold_until, restore
from schemas.types import Sample

if TYPE_CHECKING:
    from collector.browser import BrowserPool
    from collector.fleet_budget import FleetBudget

log = logging.getLogger(__name__)


_UNSTORABLE = b"unstorable"  # `_TargetState.stored` once a dump failed: logged once, not every poll


@dataclass(slots=True)
class _TargetState:
    spec: KindSpec
    adapter_state: Any  # the kind's own typed state, created by `KindSpec.new_state`
    definition: str  # `target_state.definition_key` of the target, computed once
    last_outcome: Outcome | None = None
    failures: int = 0
    successes: int = 0
    stored: bytes | None = None  # the state as last handed to the writer (or loaded): unchanged is not sent


class Poller:
    def __init__(
        self,
        config: Config,
        http: HttpClient,
        live: LiveState,
        metrics: SelfMetrics,
        sink: Callable[[PollRecord], None],
        browser: BrowserPool | None = None,
        fleet: FleetBudget | None = None,
    ) -> None:
        self.config, self.http, self.live, self.metrics, self.sink = config, http, live, metrics, sink
        self.browser = browser
        self.fleet = fleet  # in fleet mode: the politeness budget all replicas share
        self.adapters: Mapping[str, Adapter] = {t.platform: get_adapter(t.platform) for t in config.targets}
        # Room for a poll's requests (up to three) each retried with backoff, or a page load retried
        # once after a browser crash and an HTTP fallback.
        http = config.http
        one_request = (http.retries + 1) * http.timeout + http.retry_backoff * 8 * http.retries
        self.poll_timeout = max(3 * one_request, 2 * config.browser.navigation_timeout + one_request)
        self._state: dict[str, _TargetState] = {}
        platforms = config.platforms
        self.limiter = HostLimiter(
            {p.name: HostRule(p.requests_per_second, p.max_concurrency) for p in platforms.values()},
            on_wait=self._count_wait,
            shared=fleet,
        )
        self.backoff = TargetBackoff(config.collector.max_backoff)
        self.breaker = CircuitBreaker(
            {p.name: (p.breaker_failures, p.breaker_reset) for p in platforms.values()},
            on_change=self._circuit_changed,
            on_open=fleet.publish_open if fleet else lambda _p, _s: None,
        )
        # prometheus-client children by labels: `labels()` takes a lock and builds a key on every call.
        self._children: dict[tuple[object, ...], Any] = {}
        self.proxies = ProxyRotation(
            {p.name: tuple(s.reveal() for s in p.proxies) for p in platforms.values()}
        )
        if fleet is not None:
            fleet.follow(self.limiter, self.breaker, self.proxies)

    def update_targets(self, config: Config, forget: Iterable[str]) -> None:
        """A reload: poll with the new configuration; `forget` (removed or changed targets) start over."""
        self.config = config
        self.adapters = {**self.adapters, **{t.platform: get_adapter(t.platform) for t in config.targets}}
        self.forget_targets(forget)

    def forget_targets(self, names: Iterable[str]) -> None:
        """Drop these targets' state: a changed target starts over; a target gone elsewhere is not ours."""
        for name in names:
            self._state.pop(name, None)
            self.backoff.forget(name)

    async def restore_states(
        self, targets: Sequence[TargetConfig], load: Callable[[list[str]], Awaitable[Mapping[str, Any]]]
    ) -> int:
        """Load the stored state of `targets` (with e.g. `Store.load_target_states`) before their first
        poll here; returns how many carry on. A target already polled here keeps its newer state, so
        call this before scheduling the targets. A state that does not apply starts fresh (logged)."""
        stored = await load([t.name for t in targets])
        restored = 0
        for target in targets:
            data = stored.get(target.name)
            if data is None or target.name in self._state:
                continue
            spec = self.adapters[target.platform].kinds[target.kind]
            found = restore(target, spec, data)
            if found is None:
                continue
            definition = definition_key(target)
            state = self._state[target.name] = _TargetState(
                spec, found.adapter_state, definition, failures=found.failures
            )
            state.stored = canonical(
                envelope(definition, spec, found.adapter_state, found.failures, found.hold_until)
            )
            hold = (found.hold_until - datetime.now(UTC)).total_seconds() if found.hold_until else 0.0
            self.backoff.restore(target.name, found.failures, hold)
            restored += 1
        return restored

    def hold_off(self, target: TargetConfig) -> float:
        """Seconds the scheduler must wait before this target's next poll (0: go now)."""
        # A Retry-After on the platform holds every target of it here, not in a limiter slot that
        # would tie up a global poll slot and time out.
        return (
            self.backoff.wait(target.name)
            or max(0.0, self.limiter.platform_blocked_for(target.platform))
            or self.breaker.wait(target.platform)
        )

    async def _rotate_proxy(self, platform: str, used: int) -> bool:
        """Take the platform's next proxy; in a fleet, once for all replicas banned on proxy `used`."""
        if self.fleet is None:
            return self.proxies.rotate(platform)
        rotated = await self.fleet.rotate_proxy(self.proxies, platform, used)
        # PostgreSQL did not answer: move on here, still once per ban.
        return self.proxies.rotate(platform, past=used) if rotated is None else rotated

    def _count_wait(self, platform: str, seconds: float) -> None:
        self.metrics.rate_limit_waits.labels(platform).inc()
        self.metrics.rate_limit_wait_seconds.labels(platform).inc(seconds)

    def _circuit_changed(self, platform: str, state: CircuitState) -> None:
        self.metrics.circuit_state.labels(platform).set(int(state))
        level = logging.INFO if state is CircuitState.CLOSED else logging.WARNING
        log.log(level, "circuit for %s is now %s", platform, state.name.lower().replace("_", "-"))

    def _target_state(self, target: TargetConfig) -> _TargetState:
        state = self._state.get(target.name)
        if state is None:
            spec = self.adapters[target.platform].kinds[target.kind]
            state = self._state[target.name] = _TargetState(spec, spec.new_state(), definition_key(target))
        return state

    def fetcher_for(self, target: TargetConfig) -> HttpFetcher:
        """The HTTP step for one poll (or backfill step) of `target`: the shared limiter, the platform's
        current proxy and markers, a fresh list of responses."""
        return HttpFetcher(
            self.http,
            target.platform,
            self.limiter,
            self.proxies.current(target.platform),
            on_retry=self._child(self.metrics.retries, target.platform).inc,
            markers=self.adapters[target.platform].markers,
        )

    async def poll(self, target: TargetConfig) -> PollRecord:
        """Poll one target; never raises for anything the platform or the page did."""
        state = self._target_state(target)
        proxy_used = self.proxies.index(target.platform)
        fetcher = self.fetcher_for(target)
        ctx = PollContext(
            target=target,
            base_urls=self.config.platforms[target.platform].base_urls,
            http=fetcher,
            browser=(
                self.browser.fetcher(target, fetcher.responses, self.limiter, fetcher.proxy, fetcher.markers)
                if self.browser
                else None
            ),
            state=state.adapter_state,
        )
        started = time.monotonic()
        reason: str | None = None
        error: PollError | None = None
        expiry = None
        try:
            async with asyncio.timeout(self.poll_timeout):
                result = await state.spec.poll(ctx)
            outcome, parsed, expiry = result.outcome, result.parsed, result.credentials_expire_at
            if expiry is not None:
                self.metrics.credentials_expiry.labels(target.name).set(expiry.timestamp())
        except PollError as exc:
            error, outcome, parsed = exc, exc.outcome, None
            reason = exc.reason if isinstance(exc, ParseFailure) else None
        except TimeoutError:
            error = PollError(f"poll took longer than {self.poll_timeout:g}s")
            outcome, parsed = Outcome.TIMEOUT, None
        except Exception as exc:  # an adapter bug must not stop the service; keep the body for the fix
            log.exception("adapter %s crashed polling %s", target.platform, target.name)
            error = AdapterError(f"{type(exc).__name__}: {str(exc)[:200]}")
            outcome, parsed, reason = Outcome.ADAPTER_ERROR, None, None
        observed_at = datetime.now(UTC)
        labels = (target.platform, target.kind)
        self._child(self.metrics.poll_duration, *labels).observe(time.monotonic() - started)
        self._child(self.metrics.polls, *labels, outcome.value).inc()
        if reason is not None:
            self.metrics.parse_failures.labels(*labels, reason).inc()

        self.breaker.record(target.platform, outcome)
        delay = self.backoff.record(
            target.name, target.interval, outcome, error.retry_after if error else None
        )
        self.metrics.backoff.labels(target.name).set(delay)
        if REACTIONS[outcome].rotate_proxy and await self._rotate_proxy(target.platform, proxy_used):
            self.metrics.proxy_rotations.labels(target.platform).inc()
            log.info("%s: switched to the next %s proxy", target.name, target.platform)

        record = PollRecord(target.name, observed_at, outcome)
        record.next_due_at = observed_at + timedelta(seconds=max(target.interval, delay))
        record.detail = error.detail[:500] if error else None
        record.credentials_expire_at = expiry
        record.state = self._changed_state(target, state, observed_at, delay)
        if parsed is not None:
            session_key = parsed.session.key if parsed.session else None
            record.samples = [
                Sample(
                    target.name,
                    target.platform,
                    target.kind,
                    r.metric,
                    r.value,
                    observed_at,
                    r.provenance,
                    session_key,
                    r.currency,
                )
                for r in parsed.readings
            ]
            record.session = parsed.session
            self.live.update(record.samples)
            self.metrics.last_success.labels(target.name).set(observed_at.timestamp())
        record.snapshots = self._snapshots_to_keep(target, state, outcome, reason, fetcher.responses)
        for _ in record.snapshots:
            self.metrics.snapshots.labels(outcome.value).inc()
        self._log_transition(target, state, outcome, error)
        self.sink(record)
        return record

    def _changed_state(
        self, target: TargetConfig, state: _TargetState, observed_at: datetime, delay: float
    ) -> dict[str, Any] | None:
        """The target's state to store, or None when it is what was stored last."""
        failures = self.backoff.failures(target.name)
        try:
            hold = hold_until(observed_at, delay)
            data = envelope(state.definition, state.spec, state.adapter_state, failures, hold)
            dumped = canonical(data)
        except Exception:  # an adapter's state the codec cannot take: the poll's samples still count
            if state.stored != _UNSTORABLE:
                log.exception("%s: state cannot be stored; it will not survive a restart", target.name)
            state.stored = _UNSTORABLE
            return None
        if dumped == state.stored:
            return None
        state.stored = dumped
        return data

    def _child(self, family: Any, *labels: str) -> Any:
        child = self._children.get((family, *labels))
        if child is None:
            child = self._children[(family, *labels)] = family.labels(*labels)
        return child

    def _snapshots_to_keep(
        self,
        target: TargetConfig,
        state: _TargetState,
        outcome: Outcome,
        reason: str | None,
        responses: list[RawResponse],
    ) -> list[tuple[RawResponse, str | None]]:
        if not responses:
            return []
        reaction = REACTIONS[outcome]
        if reaction.keep_body:
            return [(raw, reason) for raw in responses]
        if reaction.healthy:
            state.successes += 1
            if target.keep_every_body:
                return [(raw, None) for raw in responses]
            every = self.config.collector.snapshot_success_every
            # A sample of good bodies lets a parser fix be checked against what used to parse.
            if every and (state.successes - 1) % every == 0:
                return [(responses[-1], None)]
        return []

    def _log_transition(
        self, target: TargetConfig, state: _TargetState, outcome: Outcome, error: PollError | None
    ) -> None:
        reaction = REACTIONS[outcome]
        if reaction.healthy:
            if state.failures:
                log.info(
                    "%s recovered (%s) after %d failed polls", target.name, outcome.value, state.failures
                )
            elif state.last_outcome != outcome:
                log.info("%s: %s", target.name, outcome.value)
            state.failures = 0
        else:
            state.failures += 1
            if state.failures == 1 or state.last_outcome != outcome:
                log.log(reaction.log_level, "%s: %s: %s", target.name, outcome.value, _described(error))
            else:
                log.debug("%s: %s again (%d in a row)", target.name, outcome.value, state.failures)
        state.last_outcome = outcome


def _described(error: PollError | None) -> str:
    if error is None:
        return ""
    status = f" (HTTP {error.status})" if error.status is not None else ""
    where = f" at {error.url}" if error.url and error.url not in error.detail else ""
    return f"{error.detail}{status}{where}"
