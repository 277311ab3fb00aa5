"""Poll outcomes to the database, in batches. Does I/O.

In: `PollRecord`s (with the feed's new error streak) as polls end. Out: poll rows and feed
states written by `record_polls`, many polls in one transaction.

A poll that found nothing new (the usual case: a 304) costs one small request; writing its
outcome in a transaction of its own would cost more than the request. So outcomes wait here a
fraction of a second (``FLUSH_SECONDS``) or until ``BATCH`` of them are waiting, and are written
together from a thread. Nothing is lost by waiting: until its outcome is written a feed keeps its
lease, its validators and its old due time, so a worker that dies first just polls it again.
A failed write (the database restarting) is logged and retried with the next batch.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from sqlalchemy import Engine

from monitor.store.feeds import PollRecord, record_polls

log = logging.getLogger("monitor.recorder")

FLUSH_SECONDS = 0.25
BATCH = 500
MAX_WAITING = 50_000  # beyond this (database down for long), the oldest outcomes are dropped


class PollRecorder:
    """Collects outcomes on the event loop; `run()` writes them; `flush()` writes what is left."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._waiting: list[tuple[PollRecord, int]] = []
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self.written = 0

    def add(self, record: PollRecord, error_streak: int) -> None:
        self._waiting.append((record, error_streak))
        if len(self._waiting) >= BATCH:
            self._wake.set()

    async def run(self) -> None:
        """Write batches until cancelled."""
        while True:
            with suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), FLUSH_SECONDS)
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write every waiting outcome; False if the database refused (they stay waiting)."""
        async with self._lock:
            while self._waiting:
                batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
                try:
                    await asyncio.to_thread(record_polls, self.engine, batch)
                except Exception:
                    log.exception("could not record %d polls; trying again shortly", len(batch))
                    self._waiting[:0] = batch
                    if len(self._waiting) > MAX_WAITING:
                        dropped = len(self._waiting) - MAX_WAITING
                        del self._waiting[:dropped]
                        log.error("dropped %d poll outcomes; their feeds will be polled again "
                                  "when their leases expire", dropped)
                    return False
                self.written += len(batch)
        return True
