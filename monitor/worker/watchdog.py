"""The poll watchdog: no poll outlives ``schedule.poll_deadline``.

In: a poll (a coroutine), its deadline, and the `Stages` the poll marks as it goes. Out: the
poll's result, or `PollDeadline` once the deadline passes: the poll is cancelled (its requests
closed, its stories of other polls released) and the error names the stages it was stuck in.
No I/O of its own.

Each request has its own deadline (``http.deadline``), but a poll is many steps, some not
bounded by a request (waiting for a host's turn, a hung extraction, a database lock, a wait for
another poll): without this bound one stuck step would hold a worker's poll slot, and its
feed's lease, for good. A poll ended here stores nothing more (a transaction already under
way commits whole or not at all) and keeps its feed's validators: its new entries are seen
again by the next poll.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from monitor.errors import PollDeadline
from monitor.fetch.deadlines import deadline_queue
from monitor.settings import describe_duration

T = TypeVar("T")


class Stages:
    """Where a poll is now: the stages it is in, with how many of its entries are in each
    (the pages of several entries are fetched and extracted side by side)."""

    def __init__(self) -> None:
        self._now: dict[str, int] = {}  # a plain dict: a Counter costs a microsecond to make

    async def run(self, stage: str, step: Awaitable[T]) -> T:
        """Await `step` as `stage` of the poll ("fetch feed", "fetch page", ...)."""
        now = self._now
        now[stage] = now.get(stage, 0) + 1
        try:
            return await step
        finally:
            now[stage] -= 1

    def describe(self) -> str:
        """The stages the poll is in, e.g. ``fetch page (2 entries), extract (1 entry)``."""
        now = [(stage, count) for stage, count in self._now.items() if count > 0]
        if not now:
            return "between two stages"
        return ", ".join(stage if count == 1 and len(now) == 1 else
                         f"{stage} ({count} {'entry' if count == 1 else 'entries'})"
                         for stage, count in now)


async def within_deadline(poll: Awaitable[T], seconds: float, stages: Stages, feed_url: str
                          ) -> T:
    """`poll`'s result; PollDeadline, the poll cancelled, if it runs `seconds` or longer.
    (`asyncio.timeout`, but the stages are read when the deadline passes, before the
    cancellation unwinds them, and the polls' deadlines share one timer, `deadline_queue`.)"""
    task = asyncio.current_task()
    assert task is not None, "within_deadline runs in a task"
    stuck: list[str] = []

    def expire() -> None:
        stuck.append(stages.describe())
        task.cancel()

    deadline = deadline_queue(seconds).start(expire)
    try:
        return await poll
    except asyncio.CancelledError:
        if not stuck or task.uncancel() > 0:
            raise  # cancelled from outside (shutdown), not (only) by the deadline
        raise PollDeadline(
            f"the poll of {feed_url} ran past schedule.poll_deadline "
            f"({describe_duration(seconds)}) and was ended, stuck in {stuck[0]}; its new "
            "entries are taken again next time (raise schedule.poll_deadline if the feed is "
            "merely large or slow)") from None
    finally:
        deadline.cancel()
