"""The manual clock the scheduler, backoff and limiter tests drive, and the wait both clocks share."""

from __future__ import annotations

import asyncio

import pytest

from collector.clock import SYSTEM_CLOCK, ManualClock, wait_at_most


async def _nap(clock: ManualClock, seconds: float, woke: list[tuple[float, float]]) -> float:
    await clock.sleep(seconds)
    woke.append((seconds, clock.monotonic()))
    return clock.monotonic()


async def test_advance_wakes_each_sleeper_at_its_own_deadline_in_order() -> None:
    clock = ManualClock(start=100.0)
    woke: list[tuple[float, float]] = []
    naps = [asyncio.create_task(_nap(clock, seconds, woke)) for seconds in (3.0, 1.0, 2.0, 9.0)]
    await clock.advance(5.0)
    assert woke == [(1.0, 101.0), (2.0, 102.0), (3.0, 103.0)]
    assert clock.monotonic() == 105.0
    await clock.advance(4.0)
    assert woke[-1] == (9.0, 109.0) and all(nap.done() for nap in naps)


async def test_a_sleeper_woken_by_advance_can_sleep_again_within_the_same_advance() -> None:
    clock = ManualClock()
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            await clock.sleep(0.25)
            ticks.append(clock.monotonic())

    task = asyncio.create_task(ticker())
    await clock.advance(1.0)
    task.cancel()
    assert ticks == [0.25, 0.5, 0.75, 1.0]


async def test_jump_moves_time_without_waking_anyone_until_the_loop_runs_again() -> None:
    clock = ManualClock()
    woke: list[tuple[float, float]] = []
    nap = asyncio.create_task(_nap(clock, 1.0, woke))
    await clock.advance(0.5)
    clock.jump(10.0)
    assert clock.monotonic() == 10.5 and woke == []
    await clock.advance(0)
    assert woke == [(1.0, 10.5)] and nap.done()  # late, as after a suspend


async def test_run_jumps_to_each_deadline_and_returns_the_result() -> None:
    clock = ManualClock()
    woke: list[tuple[float, float]] = []
    assert await clock.run(_nap(clock, 3600.0, woke)) == 3600.0
    assert woke == [(3600.0, 3600.0)]


async def test_run_refuses_work_that_outlives_its_limit_and_cancels_it() -> None:
    clock = ManualClock()
    task = asyncio.create_task(_nap(clock, 10.0, []))
    with pytest.raises(TimeoutError, match="after 5 clock seconds"):
        await clock.run(task, limit=5.0)
    assert task.cancelled() and clock.monotonic() == 0


async def test_run_says_so_when_the_work_waits_on_something_the_clock_cannot_move() -> None:
    clock = ManualClock()
    never = asyncio.Event()
    with pytest.raises(RuntimeError, match="other than this clock"):
        await clock.run(never.wait())


async def test_a_cancelled_sleeper_is_forgotten() -> None:
    clock = ManualClock()
    woke: list[tuple[float, float]] = []
    gone = asyncio.create_task(_nap(clock, 1.0, woke))
    await clock.advance(0)
    gone.cancel()
    assert await clock.run(_nap(clock, 2.0, woke)) == 2.0
    assert woke == [(2.0, 2.0)]


async def test_wait_at_most_reports_whether_the_work_finished_in_time() -> None:
    clock = ManualClock()
    done = asyncio.Event()

    async def finish_at(when: float) -> None:
        await clock.sleep(when)
        done.set()

    finisher = asyncio.create_task(finish_at(3.0))
    assert await clock.run(wait_at_most(clock, 5.0, done.wait())) is True
    assert clock.monotonic() == 3.0 and finisher.done()
    never = asyncio.Event()
    waiter = asyncio.ensure_future(never.wait())
    assert await clock.run(wait_at_most(clock, 5.0, waiter)) is False
    assert clock.monotonic() == 8.0 and waiter.cancelled()


async def test_wait_at_most_passes_the_work_s_error_on() -> None:
    async def broken() -> None:
        raise ValueError("bad")

    with pytest.raises(ValueError, match="bad"):
        await wait_at_most(ManualClock(), 1.0, broken())


async def test_the_system_clock_waits_in_real_time() -> None:
    ready = asyncio.Event()
    asyncio.get_running_loop().call_soon(ready.set)
    assert await wait_at_most(SYSTEM_CLOCK, 30.0, ready.wait()) is True
    assert await wait_at_most(SYSTEM_CLOCK, 0.01, asyncio.Event().wait()) is False
    before = SYSTEM_CLOCK.monotonic()
    await SYSTEM_CLOCK.sleep(0.01)
    assert SYSTEM_CLOCK.monotonic() > before
