"""Poll outcomes to the database, in batches. Does I/O.

In: `PollRecord`s (with the feed's new error streak) as polls end. Out: poll rows and feed
states written by `record_polls`, many polls in one transaction.

A poll that found nothing new (the usual case: a 304) costs one small request; writing its
outcome in a transaction of its own would cost more than the request. So outcomes wait here:
the writer wakes every tenth of a second (``FLUSH_SECONDS``), or as soon as ``BATCH`` (500)
outcomes are waiting, and writes all those waiting then, from a thread, ``BATCH`` to a
transaction. Nothing is lost by waiting: until its outcome is written a feed keeps its lease, its
validators and its old due time, so a worker that dies first just polls it again. A failed
write (the database restarting) keeps the outcomes waiting, and the next attempt comes later
and later (twice the pause each time, at most ``MAX_RETRY_SECONDS``), whatever ends meanwhile:
a database that is down is not asked ten times a second, nor at every poll's end. The first
failure is logged with its cause, then at most one line every ``REPEAT_LOG_SECONDS`` while it
lasts, and one line when the outcomes are written again. Past ``MAX_WAITING`` the oldest are
dropped (their feeds are polled again once their leases expire).
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress

from monitor.errors import StorageError
from monitor.store.engine import Engine
from monitor.store.polls import PollRecord, record_polls

log = logging.getLogger("monitor.recorder")

FLUSH_SECONDS = 0.1
BATCH = 500
MAX_WAITING = 50_000  # beyond this (database down for long), the oldest outcomes are dropped
MAX_RETRY_SECONDS = 5.0  # the longest pause between two attempts while the database refuses
REPEAT_LOG_SECONDS = 60.0  # while it refuses, one log line at most this often


class PollRecorder:
    """Collects outcomes on the event loop; `run()` writes them until `stop()`, then writes what
    is left."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._waiting: list[tuple[PollRecord, int]] = []
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._lock = asyncio.Lock()
        self._outage: _Outage | None = None  # set while the database refuses the writes

    @property
    def waiting(self) -> list[PollRecord]:
        """The outcomes not written yet."""
        return [record for record, _ in self._waiting]

    def add(self, record: PollRecord, error_streak: int) -> None:
        self._waiting.append((record, error_streak))
        if len(self._waiting) >= BATCH:
            self._wake.set()

    async def run(self) -> None:
        """Write batches until `stop()`, then what is left. (Stopped by an event, not by
        cancelling: a cancel landing as the wake-up fires can be lost on Python 3.11.)"""
        while not self._stopped.is_set():
            with suppress(TimeoutError):
                if self._outage is None:
                    async with asyncio.timeout(FLUSH_SECONDS):
                        await self._wake.wait()
                else:  # the next attempt at its time, however many outcomes come meanwhile
                    async with asyncio.timeout_at(self._outage.retry_at):
                        await self._stopped.wait()
            self._wake.clear()
            # What is waiting now, not what comes meanwhile: that waits for the next round,
            # so writes stay few and large.
            await self._write(len(self._waiting))
        await self.flush()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()

    async def flush(self) -> bool:
        """Write every waiting outcome, once the write in progress (the writer's) has ended:
        when it returns True every outcome added before is written. False if the database
        refused (they stay waiting)."""
        async with self._lock:  # the batch the writer took is not waiting, but not written yet
            pass
        while self._waiting:
            if not await self._write(len(self._waiting)):
                return False
        return True

    async def _write(self, count: int) -> bool:
        """Write the `count` oldest waiting outcomes, `BATCH` to a transaction."""
        async with self._lock:
            while count > 0 and self._waiting:
                size = min(count, BATCH)
                batch, self._waiting = self._waiting[:size], self._waiting[size:]
                try:
                    await asyncio.to_thread(record_polls, self.engine, batch)
                except Exception as exc:
                    self._refused(exc, len(batch) + len(self._waiting))
                    self._waiting[:0] = batch
                    if len(self._waiting) > MAX_WAITING:
                        dropped = len(self._waiting) - MAX_WAITING
                        del self._waiting[:dropped]
                        log.error("dropped %d poll outcomes; their feeds will be polled again "
                                  "when their leases expire", dropped)
                    return False
                count -= size
                if self._outage is not None:
                    log.warning("poll outcomes are written again, after %d failed attempts in "
                                "%.0f s", self._outage.attempts, self._outage.lasted())
                    self._outage = None
        return True

    def _refused(self, exc: Exception, waiting: int) -> None:
        """Log a refused write (the first, then one line per `REPEAT_LOG_SECONDS`) and set
        the next attempt's time."""
        outage = self._outage
        if outage is None:
            outage = self._outage = _Outage()
            # A database error says what to do in one line; anything else is a bug.
            log.error("could not record %d polls; trying again shortly: %s", waiting, exc,
                      exc_info=not isinstance(exc, StorageError))
        elif time.monotonic() - outage.logged_at >= REPEAT_LOG_SECONDS:
            outage.logged_at = time.monotonic()
            log.error("still cannot record polls: %d waiting, %d attempts failed in %.0f s; "
                      "trying again: %s", waiting, outage.attempts + 1, outage.lasted(), exc)
        outage.attempts += 1
        pause = min(MAX_RETRY_SECONDS, FLUSH_SECONDS * 2 ** min(outage.attempts, 16))
        outage.retry_at = asyncio.get_running_loop().time() + pause


class _Outage:
    """The database refusing the writes: since when, how many attempts, the next one."""

    def __init__(self) -> None:
        self.began = self.logged_at = time.monotonic()
        self.attempts = 0
        self.retry_at = 0.0  # on the event loop's clock

    def lasted(self) -> float:
        return time.monotonic() - self.began
