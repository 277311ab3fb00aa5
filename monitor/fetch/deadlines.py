"""Deadlines of one length on an event loop, all under one asyncio timer. No I/O.

In: a length in seconds and, for each deadline, what to do when it passes. Out: `Deadline`s
(cancelled when their work ends in time) and `TaskDeadline`, `asyncio.timeout_at` on such a
deadline (the task cancelled when it passes, the cancellation turned into TimeoutError).

Why: asyncio gives every deadline a timer of its own, a handle made, pushed into the loop's
heap, cancelled and popped again, and a 304 poll ran under two such deadlines of monitor's (the
poll's and its request's) beside aiohttp's own timers: several microseconds a poll. Deadlines
of one length pass in the order they start (the loop's clock only goes forward), so here they
wait in a queue in that order, and the one timer is set for the first of them still running.
Each still passes at its own time (to the loop's clock, as with asyncio's timers); one that
ends in time costs an append and a flag.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from types import TracebackType


class Deadline:
    """One deadline in a `DeadlineQueue`: `on_expiry` is called at `when` unless cancelled."""

    __slots__ = ("when", "_on_expiry")

    def __init__(self, when: float, on_expiry: Callable[[], None]) -> None:
        self.when = when
        self._on_expiry: Callable[[], None] | None = on_expiry

    def cancel(self) -> None:
        self._on_expiry = None


class DeadlineQueue:
    """The deadlines `seconds` long of one event loop, in the order they pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        self.seconds = seconds
        self._loop = loop
        self._queue: deque[Deadline] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def start(self, on_expiry: Callable[[], None]) -> Deadline:
        """A deadline `seconds` from now, calling `on_expiry` (on the loop) when it passes."""
        queue = self._queue
        while queue and queue[0]._on_expiry is None:  # ended in time: nothing to keep
            queue.popleft()
        deadline = Deadline(self._loop.time() + self.seconds, on_expiry)
        queue.append(deadline)
        if self._timer is None:
            self._timer = self._loop.call_at(deadline.when, self._expire)
        return deadline

    def _expire(self) -> None:
        """The timer: every deadline passed expires; the timer is set again for the next one
        still running (the one it was set for may have ended in time) before any is told."""
        queue, now, expired = self._queue, self._loop.time(), []
        while queue and (queue[0]._on_expiry is None or queue[0].when <= now):
            first = queue.popleft()
            if first._on_expiry is not None:
                expired.append(first._on_expiry)
                first._on_expiry = None
        self._timer = self._loop.call_at(queue[0].when, self._expire) if queue else None
        for on_expiry in expired:
            on_expiry()


_QUEUES: dict[float, DeadlineQueue] = {}  # per length, the queue of the loop that last asked


def deadline_queue(seconds: float) -> DeadlineQueue:
    """The running loop's queue of deadlines `seconds` long. (Another loop asking, in another
    thread, gets a queue of its own; the queue it replaces keeps its timer for the deadlines
    it holds.)"""
    loop = asyncio.get_running_loop()
    queue = _QUEUES.get(seconds)
    if queue is None or queue._loop is not loop:
        queue = _QUEUES[seconds] = DeadlineQueue(loop, seconds)
    return queue


class TaskDeadline:
    """A deadline `seconds` from its making, for the current task, entered (``async with``)
    around each of the steps it bounds, as `asyncio.timeout_at` would be: when it passes
    during a step, the task is cancelled and the step ends in TimeoutError (`expired` tells
    it from other timeouts); a step entered after it passed fails at once. `cancel()` once
    the work is over."""

    __slots__ = ("expired", "_deadline", "_task", "_cancelling")

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._task: asyncio.Task | None = None
        self._cancelling = 0
        self._deadline = deadline_queue(seconds).start(self._expire)

    def cancel(self) -> None:
        self._deadline.cancel()

    def _expire(self) -> None:
        self.expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aenter__(self) -> TaskDeadline:
        if self.expired:
            raise TimeoutError
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("TaskDeadline is entered in a task")
        self._task, self._cancelling = task, task.cancelling()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if self.expired and task is not None and task.uncancel() <= self._cancelling \
                and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
