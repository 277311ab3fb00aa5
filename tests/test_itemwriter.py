"""The worker's item writer, on a real SQLite database: the batches of several polls that wait
while a store runs are written together in the next transaction, each poll gets its own ids;
a group refused as a whole is written again batch by batch, so that only the poll with the bad
item fails; a poll cancelled before its batch is taken stores nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from monitor.errors import StorageError
from monitor.store.items import NewItem, insert_items
from monitor.store.schema import items
from monitor.worker.itemwriter import ItemWriter
from tests.test_stories import OTHER, _engine, _item


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    return _engine(f"sqlite:///{tmp_path / 'items.db'}")


def _new(n: int, guid: str | None = None) -> NewItem:
    return _item(1, guid or f"g-{n}", f"https://a.ma/{n}", f"{OTHER} ({n})")


class Database:
    """`insert_items` in a thread, as `PollContext.db` runs it; the first write waits for
    `go`, and a batch holding the GUID "bad" is refused as a whole, like a failing database."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.go, self.writes = engine, asyncio.Event(), []

    async def write(self, batch: list[NewItem]) -> list[int | None]:
        self.writes.append([item.guid for item in batch])
        if len(self.writes) == 1:
            await self.go.wait()
        if any(item.guid == "bad" for item in batch):
            raise StorageError("the database refused the write")
        return await asyncio.to_thread(insert_items, self.engine, batch)


def _stored(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(items)).scalar_one()


def test_batches_that_wait_are_written_together(engine: Engine) -> None:
    async def polls() -> list:
        writer, database = ItemWriter(), Database(engine)
        first = asyncio.create_task(writer.store(database.write, [_new(1)]))
        await asyncio.sleep(0)  # the first store is running, held by `go`
        others = [asyncio.create_task(writer.store(database.write, batch))
                  for batch in ([_new(2), _new(3)], [_new(4)], [_new(5), _new(6)])]
        await asyncio.sleep(0)
        database.go.set()
        return [await first] + [await task for task in others] + [database.writes]

    *ids, writes = asyncio.run(polls())
    assert writes == [["g-1"], ["g-2", "g-3", "g-4", "g-5", "g-6"]]
    assert [len(batch) for batch in ids] == [1, 2, 1, 2]
    assert sorted(i for batch in ids for i in batch) == [1, 2, 3, 4, 5, 6]
    assert _stored(engine) == 6


def test_a_refused_group_is_written_again_batch_by_batch(engine: Engine) -> None:
    async def polls() -> list:
        writer, database = ItemWriter(), Database(engine)
        first = asyncio.create_task(writer.store(database.write, [_new(1)]))
        await asyncio.sleep(0)
        others = [asyncio.create_task(writer.store(database.write, batch))
                  for batch in ([_new(2)], [_new(3), _new(4, "bad")], [_new(5)])]
        await asyncio.sleep(0)
        database.go.set()
        results = await asyncio.gather(first, *others, return_exceptions=True)
        return [*results, database.writes]

    first, second, bad, last, writes = asyncio.run(polls())
    assert writes == [["g-1"], ["g-2", "g-3", "bad", "g-5"], ["g-2"], ["g-3", "bad"], ["g-5"]]
    assert isinstance(bad, StorageError)
    assert None not in first + second + last
    assert _stored(engine) == 3  # the bad poll's other item is not stored either: it fails


def test_a_poll_cancelled_before_its_batch_is_taken_stores_nothing(engine: Engine) -> None:
    async def polls() -> list:
        writer, database = ItemWriter(), Database(engine)
        first = asyncio.create_task(writer.store(database.write, [_new(1)]))
        await asyncio.sleep(0)
        cancelled = asyncio.create_task(writer.store(database.write, [_new(2)]))
        kept = asyncio.create_task(writer.store(database.write, [_new(3)]))
        await asyncio.sleep(0)
        cancelled.cancel()
        database.go.set()
        return [await first, await kept, database.writes]

    first, kept, writes = asyncio.run(polls())
    assert writes == [["g-1"], ["g-3"]]
    assert _stored(engine) == 2 and first != kept
