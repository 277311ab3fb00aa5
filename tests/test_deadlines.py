"""Deadlines sharing one timer (`monitor.fetch.deadlines`): each passes at its own time, whether
the ones before it ended in time or not; one ended in time never fires; a task deadline ends
the step it bounds in TimeoutError, leaves a cancellation from outside a cancellation, and
fails a step entered after it passed."""

from __future__ import annotations

import asyncio

import pytest

from monitor.fetch.deadlines import TaskDeadline, deadline_queue

LENGTH = 0.2  # seconds
SLACK = 0.15  # a loaded machine runs timers late, never early


def test_each_deadline_passes_at_its_own_time_under_one_timer() -> None:
    async def scenario() -> dict[str, float]:
        loop = asyncio.get_running_loop()
        queue, fired, started = deadline_queue(LENGTH), {}, {}
        for name in ("ended in time", "second", "third"):
            started[name] = loop.time()
            deadline = queue.start(lambda name=name: fired.setdefault(name, loop.time()))
            if name == "ended in time":
                deadline.cancel()
            await asyncio.sleep(0.05)
        assert deadline_queue(LENGTH) is queue  # one queue, one timer, per loop and length
        await asyncio.sleep(LENGTH + SLACK)
        assert "ended in time" not in fired
        return {name: fired[name] - started[name] for name in fired}

    waited = asyncio.run(scenario())
    assert set(waited) == {"second", "third"}
    for seconds in waited.values():
        assert LENGTH <= seconds < LENGTH + SLACK


def test_a_deadline_started_after_the_others_ended_still_fires() -> None:
    async def scenario() -> bool:
        queue, fired = deadline_queue(LENGTH), asyncio.Event()
        for _ in range(3):
            queue.start(fired.set).cancel()
        await asyncio.sleep(LENGTH * 1.5)  # the timer set for the first ones went off: nothing
        assert not fired.is_set()
        queue.start(fired.set)
        await asyncio.wait_for(fired.wait(), LENGTH + SLACK)
        return fired.is_set()

    assert asyncio.run(scenario())


def test_a_task_deadline_ends_its_step_in_timeout_error() -> None:
    async def scenario() -> None:
        budget = TaskDeadline(LENGTH)
        async with budget:
            await asyncio.sleep(LENGTH / 4)  # a first step in time
        assert not budget.expired
        with pytest.raises(TimeoutError):
            async with budget:
                await asyncio.sleep(10)
        assert budget.expired
        assert asyncio.current_task().cancelling() == 0  # nothing left cancelled
        with pytest.raises(TimeoutError):  # a step entered once it passed fails at once
            async with budget:
                pytest.fail("a step ran past its deadline")
        ended = TaskDeadline(LENGTH)
        async with ended:
            pass
        ended.cancel()
        await asyncio.sleep(LENGTH + SLACK)  # nothing fires for the deadline ended in time
        assert not ended.expired

    asyncio.run(scenario())


def test_a_cancellation_from_outside_stays_a_cancellation() -> None:
    async def bounded() -> None:
        async with TaskDeadline(10):
            await asyncio.sleep(10)

    async def scenario() -> None:
        task = asyncio.ensure_future(bounded())
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())
