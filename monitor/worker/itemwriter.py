"""The items of a worker's polls, stored one transaction at a time: what came meanwhile together.

In: batches of ready `NewItem`s from the polls of one worker (`ItemWriter.store`, awaited by the
poll) and the function that stores a list of items in one transaction in a thread (the store's
`insert_items` through `PollContext.db`). Out: each batch's item ids (None: its story was stored
already, recorded as one more source), or the `StorageError` that refused it. Runs on the
worker's event loop.

Why: each store is a write transaction, and on SQLite a writer waits for the database's one
write lock by sleeping and retrying, holding one of the few database threads all the while (the
look-ups of the other polls queue behind it). One store in flight per worker, with every batch
that arrived while it ran written in the next transaction, takes one thread and one lock per
round instead of one per poll. A batch's items are still each in a SAVEPOINT of their own
(`insert_items`), so an item refused by a unique key costs only itself. A transaction that fails
as a whole (`StorageError`) is tried again one batch at a time, so that one poll's bad item
fails that poll alone; a poll cancelled before its batch was taken is simply left out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from monitor.errors import StorageError
from monitor.store.items import NewItem

MAX_ITEMS = 200  # items in one transaction at most (a batch is never split)

Ids = list[int | None]
Write = Callable[[list[NewItem]], Awaitable[Ids]]


class ItemWriter:
    """One item store at a time for a worker; the batches that wait are written together."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Sequence[NewItem], asyncio.Future]] = []
        self._writing: asyncio.Task | None = None

    async def store(self, write: Write, batch: Sequence[NewItem]) -> Ids:
        """Store `batch` (with whatever else is waiting) through `write`; its ids in its order."""
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((batch, done))
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._write_all(write))
        return await done

    async def _write_all(self, write: Write) -> None:
        group: list[tuple[Sequence[NewItem], asyncio.Future]] = []
        try:
            while self._waiting:
                group, size = [], 0
                while self._waiting and (not group
                                         or size + len(self._waiting[0][0]) <= MAX_ITEMS):
                    batch, done = self._waiting.pop(0)
                    if not done.done():  # not cancelled meanwhile
                        group.append((batch, done))
                        size += len(batch)
                if group:
                    await _write_group(write, group)
        finally:  # cancelled (the worker shuts down): no poll waits for a store that never ends
            for _, done in group + self._waiting:
                done.cancel()


async def _write_group(write: Write, group: list[tuple[Sequence[NewItem], asyncio.Future]]
                       ) -> None:
    try:
        ids = await write([item for batch, _ in group for item in batch])
    except StorageError as exc:
        if len(group) == 1:
            _settle(group[0][1], error=exc)
            return
        for batch, done in group:  # one at a time: a bad item fails its own poll only
            try:
                _settle(done, await write(list(batch)))
            except StorageError as alone:
                _settle(done, error=alone)
        return
    except Exception as exc:  # a bug: every poll of the group records it
        for _, done in group:
            _settle(done, error=exc)
        return
    start = 0
    for batch, done in group:
        _settle(done, ids[start:start + len(batch)])
        start += len(batch)


def _settle(done: asyncio.Future, ids: Ids | None = None, *,
            error: BaseException | None = None) -> None:
    if done.done():  # the poll was cancelled (stop, deadline) while its batch was written
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(ids)
