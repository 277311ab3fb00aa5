"""What every poll of a worker shares, and what one poll counts.

In: the worker's parts (settings, database engines, fetcher, host gate, robots.txt cache, CPU
pool, corpus, recorder, current rules, stop event). Out: `PollContext`, handed to every poll,
`PollTally`, one poll's counts and stages, and `CycleTally`, the counts of a run over many
feeds so far (what a progress display shows). Plain data with three small I/O helpers (a
database call in a thread, a read-only one, one polite request).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.corpus import Corpus
from monitor.fetch.client import Fetched, Fetcher
from monitor.fetch.hostgate import HostGate
from monitor.fetch.robots import RobotsCache
from monitor.rules import RuleSet
from monitor.settings import Settings
from monitor.store.engine import Engine
from monitor.store.polls import PollRecord
from monitor.worker.cpupool import CpuWork
from monitor.worker.itemwriter import ItemWriter
from monitor.worker.recorder import PollRecorder
from monitor.worker.watchdog import Stages


@dataclass
class PollContext:
    settings: Settings
    engine: Engine
    reader: Engine  # for look-ups: on SQLite it never takes the write lock
    fetcher: Fetcher
    gate: HostGate
    robots: RobotsCache | None  # None: robots.txt not consulted (http.robots_txt: false)
    cpu: CpuWork
    corpus: Corpus
    recorder: PollRecorder
    rules: Callable[[], RuleSet]  # the current rules (they may be reloaded between polls)
    stop: asyncio.Event
    worker: str | None = None  # this worker's identity (host:pid:nonce), the owner of its leases
    # Canonical URLs whose stories a poll of this worker is fetching, each with a future done
    # once that poll has stored them (its batch is in): another feed bringing the same article
    # waits for it instead of fetching the page again. (Entries of one poll sharing a URL wait
    # for the first of them instead, `Story.same_as`.)
    in_flight: dict[str, asyncio.Future] = field(default_factory=dict)
    # The polls' new items, stored one transaction at a time (what waits meanwhile together).
    item_writer: ItemWriter = field(default_factory=ItemWriter)
    # Told of every poll's outcome as it ends (a progress display); None: nobody listens.
    on_poll: Callable[[PollRecord, PollTally], None] | None = None

    async def db(self, function, *args, **kwargs):
        """A database call, in a thread: the event loop goes on meanwhile."""
        return await asyncio.to_thread(function, self.engine, *args, **kwargs)

    async def read(self, function, *args, **kwargs):
        """A read-only database call (on the reader), in a thread."""
        return await asyncio.to_thread(function, self.reader, *args, **kwargs)

    async def fetch(self, url: str, **kwargs) -> Fetched:
        """One request, within the host's politeness limits."""
        async with self.gate.slot(url):
            return await self.fetcher.get(url, **kwargs)


@dataclass
class PollTally:
    """One poll's counts, for its record and its log line, and its stages, for the watchdog."""

    entries: int = 0
    pages: int = 0  # article pages asked for (fetched, or failed)
    new_items: int = 0
    relevant_items: int = 0
    page_errors: int = 0
    sources_added: int = 0
    stages: Stages = field(default_factory=Stages)  # where the poll is, for the watchdog
    left: int = 0  # new entries over http.max_entries, for the next polls
    empty: int = 0  # entries with neither a link nor any text, skipped


@dataclass
class CycleTally:
    """A run over many feeds so far: feeds claimed and polled, pages asked for, items."""

    feeds: int = 0
    polled: int = 0
    pages: int = 0
    new_items: int = 0
    relevant_items: int = 0

    def add(self, record: PollRecord, tally: PollTally) -> None:
        self.polled += 1
        self.pages += tally.pages
        self.new_items += record.new_items
        self.relevant_items += record.relevant_items


def now_utc() -> datetime:
    return datetime.now(UTC)
