"""The recorder driven directly, on a real database: outcomes are written while it runs and what is
left when it stops; a flush returns once the batch being written is written; a write the
database refuses keeps its outcomes waiting, in order, and they are written once when it accepts
again (on both backends); past the waiting limit the oldest are dropped, and said so."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

import monitor.worker.recorder as recorder_module
from monitor.settings import FeedSpec
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import sync_feeds
from monitor.store.polls import PollRecord
from monitor.worker.recorder import PollRecorder

START = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _engine(url: str, feeds: int = 3) -> tuple[sa.Engine, list[int]]:
    engine = make_engine(url)
    create_schema(engine)
    sync_feeds(engine, [FeedSpec(url=f"https://site{i}.ma/rss", name=f"site {i}")
                        for i in range(feeds)], START)
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT id FROM feeds ORDER BY id")).scalars().all()
    return engine, ids


def _record(feed_id: int, minute: int) -> PollRecord:
    started = START + timedelta(minutes=minute)
    return PollRecord(feed_id=feed_id, started_at=started, finished_at=started,
                      status="not-modified", next_due=started + timedelta(hours=1))


def _polls(engine: sa.Engine) -> list[int]:
    """The minute of each stored poll, in the order written."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT started_at FROM polls ORDER BY id")).scalars().all()
    return [int((_aware(at) - START).total_seconds() // 60) for at in rows]


def _aware(value) -> datetime:
    value = datetime.fromisoformat(value) if isinstance(value, str) else value
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _refuse(engine: sa.Engine, refuse: bool) -> None:
    """The database refuses to record polls (their table is away), or accepts again."""
    names = ("polls", "polls_away") if refuse else ("polls_away", "polls")
    with engine.begin() as conn:
        conn.execute(sa.text(f"ALTER TABLE {names[0]} RENAME TO {names[1]}"))


def _refusing(engine: sa.Engine) -> PollRecorder:
    """A recorder whose database refuses to record polls, until `_refuse(engine, False)`."""
    _refuse(engine, True)
    return PollRecorder(engine)


def _sizes(monkeypatch: pytest.MonkeyPatch, **sizes: float) -> None:
    """The recorder's limits and periods set to `sizes` for one test."""
    for name, value in sizes.items():
        monkeypatch.setattr(recorder_module, name, value)


async def _until(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "not written in time"
        await asyncio.sleep(0.02)


def test_outcomes_are_written_while_running_and_the_rest_on_stop(tmp_path) -> None:
    engine, ids = _engine(f"sqlite:///{tmp_path / 'r.db'}")

    async def scenario():
        recorder = PollRecorder(engine)
        writer = asyncio.create_task(recorder.run())
        for minute, feed_id in enumerate(ids):
            recorder.add(_record(feed_id, minute), 0)
        await _until(lambda: len(_polls(engine)) == 3)  # written without being asked
        recorder.add(_record(ids[0], 3), 2)
        recorder.add(_record(ids[1], 4), 0)
        recorder.stop()
        await writer

    asyncio.run(scenario())
    assert _polls(engine) == [0, 1, 2, 3, 4]
    with engine.connect() as conn:
        streaks = dict(conn.execute(sa.text("SELECT id, error_streak FROM feeds")).all())
    assert streaks == {ids[0]: 2, ids[1]: 0, ids[2]: 0}


def test_a_flush_returns_once_the_batch_being_written_is_written(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `run --once` times its cycle up to the flush: a batch the writer took as the last polls
    # ended is part of it, and when the flush returns, it is stored.
    _sizes(monkeypatch, BATCH=2)
    path = tmp_path / "r.db"
    engine, ids = _engine(f"sqlite:///{path}")
    holder = sqlite3.connect(path, isolation_level=None)

    async def scenario():
        recorder = PollRecorder(engine)
        writer = asyncio.create_task(recorder.run())
        holder.execute("BEGIN IMMEDIATE")  # the writer's batch waits for the database
        recorder.add(_record(ids[0], 0), 0)
        recorder.add(_record(ids[1], 1), 0)
        await _until(lambda: not recorder.waiting)  # taken by the writer, being written
        flush = asyncio.create_task(recorder.flush())
        await asyncio.sleep(0.3)
        waited = not flush.done()
        holder.execute("ROLLBACK")
        written = await flush
        stored = _polls(engine)
        recorder.stop()
        await writer
        return waited, written, stored

    waited, written, stored = asyncio.run(scenario())
    holder.close()
    assert (waited, written, stored) == (True, True, [0, 1])


def test_a_refused_write_waits_and_is_written_once_accepted(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    engine, ids = _engine(database_url)

    async def scenario():
        recorder = _refusing(engine)
        recorder.add(_record(ids[0], 0), 1)
        recorder.add(_record(ids[1], 1), 0)
        assert await recorder.flush() is False
        with engine.connect() as conn:  # nothing half-written
            assert conn.execute(sa.text("SELECT count(*) FROM feeds "
                                        "WHERE last_status IS NOT NULL")).scalar() == 0
        writer = asyncio.create_task(recorder.run())  # tries again, round after round
        await asyncio.sleep(3 * recorder_module.FLUSH_SECONDS)
        recorder.add(_record(ids[2], 2), 0)  # arrives meanwhile: written after the others
        _refuse(engine, False)
        await _until(lambda: len(_polls(engine)) == 3)
        recorder.stop()
        await writer

    with caplog.at_level(logging.ERROR, logger="monitor.recorder"):
        asyncio.run(scenario())
    assert _polls(engine) == [0, 1, 2]
    assert "could not record 2 polls; trying again shortly" in caplog.text
    engine.dispose()


def test_a_refusing_database_is_asked_again_later_and_later_and_logged_once(
    tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    """While the database refuses, attempts come after a pause that doubles (0.2, 0.4, 0.8 s
    ...), however many outcomes arrive meanwhile (each past `BATCH` used to wake the writer at
    once); the failure is logged once, and the return to normal once."""
    engine, ids = _engine(f"sqlite:///{tmp_path / 'r.db'}", feeds=1)

    async def scenario():
        recorder = _refusing(engine)
        writer = asyncio.create_task(recorder.run())
        for minute in range(3 * recorder_module.BATCH):  # over one second
            recorder.add(_record(ids[0], minute), 0)
            if minute % 100 == 0:
                await asyncio.sleep(0.07)
        _refuse(engine, False)
        await _until(lambda: len(_polls(engine)) == 3 * recorder_module.BATCH, timeout=10)
        recorder.stop()
        await writer

    with caplog.at_level(logging.WARNING, logger="monitor.recorder"):
        asyncio.run(scenario())
    assert _polls(engine) == list(range(3 * recorder_module.BATCH))
    assert caplog.text.count("could not record") == 1
    assert "still cannot record" not in caplog.text  # under a minute
    [back] = [r.getMessage() for r in caplog.records if "written again" in r.getMessage()]
    attempts = int(back.split("after ")[1].split()[0])
    assert 2 <= attempts <= 4, back  # at about 0.1, 0.3, 0.7 s; 1.5 s finds it back
    engine.dispose()


def test_a_long_refusal_is_logged_again_at_most_once_a_period(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The period and the longest pause are sizes: small ones show the same rule quickly.
    _sizes(monkeypatch, REPEAT_LOG_SECONDS=0.5, MAX_RETRY_SECONDS=0.15)
    engine, ids = _engine(f"sqlite:///{tmp_path / 'r.db'}", feeds=1)

    async def scenario():
        recorder = _refusing(engine)
        recorder.add(_record(ids[0], 0), 0)
        writer = asyncio.create_task(recorder.run())
        await asyncio.sleep(1.3)
        _refuse(engine, False)
        await _until(lambda: len(_polls(engine)) == 1)
        recorder.stop()
        await writer

    with caplog.at_level(logging.ERROR, logger="monitor.recorder"):
        asyncio.run(scenario())
    again = [r.getMessage() for r in caplog.records if "still cannot record" in r.getMessage()]
    assert caplog.text.count("could not record") == 1 and 1 <= len(again) <= 2, caplog.text
    assert again[0].startswith("still cannot record polls: 1 waiting, ")


def test_past_the_waiting_limit_the_oldest_outcomes_are_dropped(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The limits are sizes, not behaviour: small ones show the same rule on few outcomes.
    _sizes(monkeypatch, BATCH=4, MAX_WAITING=6)
    engine, ids = _engine(f"sqlite:///{tmp_path / 'r.db'}", feeds=1)

    async def scenario():
        recorder = _refusing(engine)
        for minute in range(10):
            recorder.add(_record(ids[0], minute), 0)
        assert await recorder.flush() is False
        _refuse(engine, False)
        assert await recorder.flush() is True

    with caplog.at_level(logging.ERROR, logger="monitor.recorder"):
        asyncio.run(scenario())
    assert _polls(engine) == [4, 5, 6, 7, 8, 9]
    assert "dropped 4 poll outcomes" in caplog.text
