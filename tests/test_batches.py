"""worker.batches: jobs run a bounded number at a time, finished ones stored in batches in the
jobs' order (by size, or after a second), and a stop leaves the rest undone, what finished
stored."""

from __future__ import annotations

import asyncio

from monitor.worker import batches
from monitor.worker.batches import run_in_batches


def test_jobs_run_a_few_at_a_time_and_are_stored_in_ordered_batches() -> None:
    running, most, stored = 0, 0, []

    def job(number: int):
        async def run() -> int:
            nonlocal running, most
            running += 1
            most = max(most, running)
            await asyncio.sleep(0.001 * (number % 7))
            running -= 1
            return number
        return run

    async def store(finished) -> None:
        stored.append([task.result() for _, task in finished])
        assert [number for number, _ in finished] == sorted(number for number, _ in finished)

    stopped = asyncio.run(run_in_batches([job(n) for n in range(300)], store, asyncio.Event()))
    assert not stopped and most == batches.PREPARE_AT_ONCE
    assert sorted(n for batch in stored for n in batch) == list(range(300))
    assert all(len(batch) <= batches.STORE_BATCH for batch in stored)
    assert max(map(len, stored)) == batches.STORE_BATCH  # stored together, not one by one


def test_a_stop_stores_what_finished_and_leaves_the_rest() -> None:
    stored: list[int] = []

    def job(number: int):
        async def run() -> int:
            await asyncio.sleep(0 if number < 3 else 60)
            return number
        return run

    async def store(finished) -> None:
        stored.extend(task.result() for _, task in finished)

    async def scenario() -> tuple[bool, float]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.call_later(0.2, stop.set)
        started = loop.time()
        stopped = await run_in_batches([job(n) for n in range(100)], store, stop)
        return stopped, loop.time() - started

    stopped, took = asyncio.run(scenario())
    # The three quick ones waited for their batch (a second) or for the stop, then were stored.
    assert stopped and stored == [0, 1, 2] and took < 1
