"""CPU work off the event loop: feed parsing and article extraction in a pool of processes.

In: a feed's bytes, or a page's bytes. Out: a `ParsedFeed` (or the NotAFeed it raised), or a
`PageText` (the extracted article and its near-duplicate signature, or why there is none).

Fetching is I/O and runs on one event loop; parsing a feed and extracting an article are
CPU-bound (milliseconds to tens of milliseconds each) and would stall every other request if run
on the loop. They run here, in ``schedule.extract_processes`` processes (0: one per core), so the
fetching never waits on them and extraction uses every core. The pool starts on first use: a
steady-state cycle where every feed answers 304 starts no process at all. Processes are made by a
fork server (not forked from the multi-threaded worker itself) that has already imported the
extraction code, so a new process is ready in milliseconds.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from monitor.errors import MonitorError
from monitor.extract import Article, extract_article
from monitor.feeds import ParsedFeed, parse_feed
from monitor.neardup import signature

log = logging.getLogger("monitor.cpuwork")


@dataclass(frozen=True)
class PageText:
    """What extraction made of one page: the article and its signature, or the reason why not."""

    article: Article | None
    signature: tuple[int, ...] | None
    error_reason: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class _Failure:
    """A MonitorError carried across the process boundary by value (reason and message)."""

    reason: str
    message: str


def extract_page(content: bytes, url: str, content_type: str | None) -> PageText:
    """Extract one page (runs in a pool process)."""
    try:
        article = extract_article(content, url=url, content_type=content_type)
    except MonitorError as exc:
        return PageText(None, None, exc.reason, exc.message)
    return PageText(article, signature(article.text))


def _parse(content: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed | _Failure:
    try:
        return parse_feed(content, url=url, headers=headers)
    except MonitorError as exc:
        return _Failure(exc.reason, exc.message)


def _exit_with(owner_pid: int) -> None:
    """Pool process initializer: exit once the worker that started the pool is gone. A worker
    killed with SIGKILL (or leaving with os._exit on a second signal) never closes its pool,
    and nothing else would tell its processes, which would wait for work forever."""

    def watch() -> None:
        while _alive(owner_pid):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a killed process not yet reaped by its parent is a zombie: gone all the same
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def pool_size(configured: int) -> int:
    """`configured` processes, or one per core this process may run on when it is 0."""
    if configured > 0:
        return configured
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class CpuWork:
    """The process pool, started on first use; `close()` stops it."""

    def __init__(self, processes: int) -> None:
        self.processes = pool_size(processes)
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["monitor.cpuwork"])
            self._pool = ProcessPoolExecutor(self.processes, mp_context=context,
                                             initializer=_exit_with, initargs=(os.getpid(),))
        return self._pool

    async def _run(self, function, *args):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), function, *args)
        except BrokenProcessPool:
            # A process died (killed, out of memory): start a new pool and try once more.
            log.warning("an extraction process died; starting a new pool")
            self.close()
            return await loop.run_in_executor(self._executor(), function, *args)

    async def parse_feed(self, content: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        """`monitor.feeds.parse_feed` in a pool process; raises what it raises."""
        result = await self._run(_parse, content, url, dict(headers))
        if isinstance(result, _Failure):
            raise MonitorError(result.message, reason=result.reason)
        return result

    async def extract_page(self, content: bytes, url: str, content_type: str | None) -> PageText:
        return await self._run(extract_page, content, url, content_type)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
