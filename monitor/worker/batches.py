"""A poll's work on its entries: a few entries at a time, what is done stored in batches.

In: one job per entry (a coroutine function), in the feed's order; a function that stores a
batch of finished jobs; the worker's stop event. Out: whether the stop came before every job
was done. Runs on the worker's event loop; does I/O only through the functions it is given.

Jobs run `PREPARE_AT_ONCE` at a time: each takes a database thread for its look-ups, and a
batch's store must not queue behind hundreds of them. Finished jobs are handed to the store in
batches of `STORE_BATCH`, or as many as are done `STORE_EVERY` seconds after the first of a
batch, so what is done is kept whatever becomes of the rest and no store is long. Once the
worker is asked to stop, the jobs still running are cancelled, the ones done are stored, and
the others are left for the next poll.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence

PREPARE_AT_ONCE = 32  # jobs running at once
STORE_BATCH = 50  # finished jobs stored together at most
STORE_EVERY = 1.0  # seconds a finished job waits at most for the rest of its batch

Job = Callable[[], Awaitable[None]]
Store = Callable[[list[tuple[int, asyncio.Future]]], Awaitable[None]]


async def run_in_batches(jobs: Sequence[Job], store: Store, stop: asyncio.Event) -> bool:
    """Run `jobs` and hand the finished ones to `store` in batches, as (job index, task) pairs
    in the jobs' order (each task's result or exception is the store's to look at). True if
    `stop` was set before every job was done."""
    waiting = deque(enumerate(jobs))
    index: dict[asyncio.Future, int] = {}
    pending: set[asyncio.Future] = set()
    ready: set[asyncio.Future] = set()
    stopping, due = asyncio.ensure_future(stop.wait()), 0.0

    def start_more() -> None:
        while waiting and len(pending) < PREPARE_AT_ONCE:
            number, job = waiting.popleft()
            task = asyncio.ensure_future(job())
            index[task] = number
            pending.add(task)

    async def store_ready() -> None:
        finished = sorted(((index[task], task) for task in ready), key=lambda pair: pair[0])
        ready.clear()
        for start in range(0, len(finished), STORE_BATCH):
            await store(finished[start:start + STORE_BATCH])

    try:
        start_more()
        while pending and not stop.is_set():
            wait = max(due - time.monotonic(), 0.0) if ready else None
            finished, _ = await asyncio.wait(pending | {stopping}, timeout=wait,
                                             return_when=asyncio.FIRST_COMPLETED)
            finished.discard(stopping)
            pending -= finished
            if not ready:
                due = time.monotonic() + STORE_EVERY
            ready |= finished
            start_more()
            if len(ready) >= STORE_BATCH or not pending or time.monotonic() >= due:
                await store_ready()
    finally:
        stopping.cancel()
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        # A store that raised leaves finished jobs it did not look at: their errors are seen
        # here (the store's own error is the one that counts), not reported as never retrieved.
        for task in index:
            if task.done() and not task.cancelled():
                task.exception()
    # Stopped: the jobs that finished meanwhile are stored too; the others are left.
    ready |= {task for task in pending if not task.cancelled()}
    left = bool(waiting) or any(task.cancelled() for task in pending)
    await store_ready()
    return left
