"""The scheduler's rules on a manual clock: skip when running, global bound, hold-off, jitter, stalls, drain."""

from __future__ import annotations

import asyncio
import itertools
import random
from typing import Any

import pytest

from collector.clock import ManualClock
from collector.config import TargetConfig
from collector.scheduler import Scheduler


def target(name: str, interval: float = 0.1) -> TargetConfig:
    return TargetConfig(name, "tiktok", "live", interval, {"account": name}, "camp")


def noting_starts(clock: ManualClock, one: TargetConfig, **options: Any) -> tuple[Scheduler, list[float]]:
    """A scheduler on `clock` for one target whose polls only note when they start."""
    starts: list[float] = []

    async def poll(_t: TargetConfig) -> None:
        starts.append(clock.monotonic())

    settings: dict[str, Any] = {"max_concurrency": 1, "jitter": 0.0, "on_skip": lambda _t: None, **options}
    return Scheduler([one], poll, clock=clock, **settings), starts


async def _stop_at(clock: ManualClock, when: float, stop: asyncio.Event) -> None:
    await clock.sleep(when - clock.monotonic())
    stop.set()


async def run_until(clock: ManualClock, scheduler: Scheduler, when: float) -> None:
    """Run the scheduler on `clock` until clock time `when`, then stop it."""
    stop = asyncio.Event()
    stopper = asyncio.create_task(_stop_at(clock, when, stop))
    await clock.run(scheduler.run(stop))
    await stopper


async def test_a_poll_still_running_is_skipped_and_counted_never_stacked() -> None:
    clock = ManualClock()
    events: list[tuple[str, str, float]] = []
    running: dict[str, int] = {}
    most_at_once: dict[str, int] = {}

    async def slow_poll(t: TargetConfig) -> None:
        events.append((t.name, "start", clock.monotonic()))
        running[t.name] = running.get(t.name, 0) + 1
        most_at_once[t.name] = max(most_at_once.get(t.name, 0), running[t.name])
        await clock.sleep(0.35)
        running[t.name] -= 1

    scheduler = Scheduler(
        [target("a"), target("b")],
        slow_poll,
        max_concurrency=8,
        jitter=0.0,
        on_skip=lambda t: events.append((t.name, "skip", clock.monotonic())),
        rng=random.Random(3),
        clock=clock,
    )
    await run_until(clock, scheduler, 1.2)
    await clock.run(scheduler.drain(2))
    assert most_at_once == {"a": 1, "b": 1}
    for name in ("a", "b"):
        mine = [(kind, at) for n, kind, at in events if n == name]
        phase = mine[0][1]
        assert 0 <= phase < 0.1
        # Due every 0.1 s, busy for 0.35 s: three skips, then the next start, never two at once.
        expected = [
            ("skip" if step % 4 else "start", phase + step * 0.1)
            for step in range(12)
            if phase + step * 0.1 < 1.2
        ]
        assert [kind for kind, _ in mine] == [kind for kind, _ in expected]
        assert [at for _, at in mine] == pytest.approx([at for _, at in expected])


async def test_global_concurrency_is_bounded() -> None:
    clock = ManualClock()
    in_flight, peak = 0, 0
    polled: set[str] = set()

    async def poll(t: TargetConfig) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        polled.add(t.name)
        await clock.sleep(0.1)
        in_flight -= 1

    targets = [target(f"t{i}", interval=0.05) for i in range(10)]
    scheduler = Scheduler(targets, poll, max_concurrency=3, jitter=0.1, on_skip=lambda _t: None, clock=clock)
    await run_until(clock, scheduler, 0.6)
    await clock.run(scheduler.drain(2))
    assert peak == 3
    assert len(polled) == 10  # the bound queues polls, it does not starve any target


async def test_a_target_told_to_hold_off_comes_back_exactly_when_allowed_and_is_not_counted_as_skipped() -> (
    None
):
    clock = ManualClock()
    skipped: list[str] = []
    holds = [2.5]
    scheduler, starts = noting_starts(
        clock,
        target("a", interval=1.0),
        on_skip=lambda t: skipped.append(t.name),
        hold_off=lambda _t: holds.pop() if holds else 0.0,
    )
    await run_until(clock, scheduler, 6.0)
    phase = starts[0] - 2.5
    assert 0 <= phase < 1.0
    assert starts == pytest.approx([phase + 2.5 + n for n in range(4) if phase + 2.5 + n < 6.0])
    assert skipped == []


async def test_intervals_are_jittered_within_their_bounds() -> None:
    clock = ManualClock()
    scheduler, starts = noting_starts(clock, target("a", interval=10.0), jitter=0.2, rng=random.Random(5))
    await run_until(clock, scheduler, 1000.0)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(gaps) >= 80
    assert all(8.0 <= gap <= 12.0 for gap in gaps)
    assert min(gaps) < 8.5 and max(gaps) > 11.5  # the whole band is used, not just its middle


async def test_after_a_stall_polls_resume_from_now_without_a_burst_of_catch_ups() -> None:
    clock = ManualClock()
    scheduler, starts = noting_starts(clock, target("a", interval=1.0))
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    await clock.advance(1.0)
    [phase] = starts
    assert scheduler.alive()
    clock.jump(20.0)  # the machine was suspended: nothing ran for twenty intervals
    assert not scheduler.alive(stall_after=10.0)
    await clock.advance(2.0)
    stop.set()
    await clock.run(running)
    # One poll on waking (at 21), the next half an interval later, then the normal cadence again.
    assert starts == pytest.approx([phase, 21.0, 21.5, 22.5])
    assert scheduler.alive()


async def test_the_heartbeat_beats_while_nothing_is_due() -> None:
    clock = ManualClock()
    scheduler = Scheduler([], _never, max_concurrency=1, jitter=0.0, on_skip=lambda _t: None, clock=clock)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    await clock.advance(5.5)
    assert scheduler.last_heartbeat == 5.0  # woken every HEARTBEAT_EVERY second to say it is alive
    stop.set()
    await clock.run(running)


async def _never(_t: TargetConfig) -> None:
    raise AssertionError("no poll was due")


async def test_drain_waits_for_polls_and_cancels_those_that_outlive_the_grace_period() -> None:
    clock = ManualClock()
    finished: list[str] = []
    cancelled: list[str] = []

    async def poll(t: TargetConfig) -> None:
        try:
            await clock.sleep(30 if t.name == "stuck" else 0.5)
        except asyncio.CancelledError:
            cancelled.append(t.name)
            raise
        finished.append(t.name)

    scheduler = Scheduler(
        [target("stuck", 0.01), target("quick", 0.01)],
        poll,
        max_concurrency=2,
        jitter=0,
        on_skip=lambda _t: None,
        clock=clock,
    )
    await run_until(clock, scheduler, 0.1)
    await clock.run(scheduler.drain(2.0))
    assert finished == ["quick"] and cancelled == ["stuck"]
    assert clock.monotonic() == pytest.approx(2.1)  # exactly the grace period, not the stuck poll's 30 s


async def test_drain_returns_as_soon_as_the_last_poll_finishes() -> None:
    clock = ManualClock()
    polls: list[tuple[float, float]] = []

    async def poll(_t: TargetConfig) -> None:
        started = clock.monotonic()
        await clock.sleep(0.5)
        polls.append((started, clock.monotonic()))

    scheduler = Scheduler(
        [target("a", 0.01)], poll, max_concurrency=1, jitter=0, on_skip=lambda _t: None, clock=clock
    )
    await run_until(clock, scheduler, 0.1)
    await clock.run(scheduler.drain(60))
    [(started, ended)] = polls
    assert ended == pytest.approx(started + 0.5) and clock.monotonic() == ended


async def test_schedule_lag_is_how_long_a_due_poll_waited_for_its_turn() -> None:
    clock = ManualClock()
    lags: list[float] = []

    async def poll(_t: TargetConfig) -> None:
        await clock.sleep(0.3)

    scheduler = Scheduler(
        [], poll, max_concurrency=1, jitter=0.0, on_skip=lambda _t: None, on_lag=lags.append, clock=clock
    )
    # Three targets due at once behind a bound of one: each waits for the polls before it.
    scheduler.update_targets([target(n, interval=1.0) for n in "abc"], dict.fromkeys("abc", 0.0))
    await run_until(clock, scheduler, 0.95)
    await clock.run(scheduler.drain(2))
    assert lags == pytest.approx([0.0, 0.3, 0.6])
