"""CPU work off the event loop: feed parsing and article extraction in a pool of processes.

In: a feed's bytes, or a page's bytes. Out: a `ParsedFeed` (or the NotAFeed it raised, the
same error whether the feed was parsed on the loop or in a pool process), or a `PageText` (the
extracted article, its near-duplicate signature and text hashes; or the NoText it raised).

Fetching is I/O and runs on one event loop; parsing a feed and extracting an article are
CPU-bound (milliseconds to tens of milliseconds each) and would stall every other request if run
on the loop. They run here, in ``schedule.extract_processes`` processes (0: one per core), so the
fetching never waits on them and extraction uses every core. A feed of up to 64 KiB is parsed on
the loop until the pool runs (a millisecond or so: not worth starting it for); once it runs
(news is coming: the worker's core is then the busy one, the pool's far less), such feeds go to
it in batches, those asked for in one turn of the loop together, a batch for each process: a
trip to the pool costs the worker about half of what parsing a small feed does, a batch's trip
shared by its feeds far less. The pool's processes start when the
first feed brings news, or with the claim of a feed never fetched (`worker/daemon.py`): a
steady-state cycle where every feed answers 304 starts none. They are
made by a fork server (not forked from the multi-threaded worker itself) that imports the
extraction code and runs it once (`warm_up`, preloaded by `worker/forkwarm.py`), so a new
process extracts at full speed from its first page. The fork server too starts with the first
news (its imports overlap the fetching of that news's pages), not with the worker: a cycle of
304s would hold its ~75 MB for nothing; `monitor run --once` starts it before its own imports
when feeds.yaml lists a feed never fetched (`worker/forkstart.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool, _ExceptionWithTraceback
from dataclasses import dataclass
from functools import partial

from monitor.errors import NoText
from monitor.extract import Article, extract_article
from monitor.extract import warm_up as warm_up_extraction
from monitor.feeds.parse import ParsedFeed, parse_feed
from monitor.identity import content_hash
from monitor.neardup import band_keys, signature_and_merge_hash
from monitor.worker.forkstart import fork_server_context, start_fork_server
from monitor.worker.liveness import process_alive

log = logging.getLogger("monitor.cpuwork")

INLINE_PARSE_BYTES = 64 * 1024
# The pipe that carries pages to the pool processes: a few pages (about 160 KB each) rather than
# Linux's default 64 KiB, and at most what an unprivileged process may ask (fs.pipe-max-size).
TASK_PIPE_BYTES = 2**20
FeedToParse = tuple[bytes, str, dict[str, str]]  # content, url, headers (`parse_feed`'s)


@dataclass(frozen=True)
class PageText:
    """What became of one page: the article and its signature, or the reason why there is none
    (a fetch error, robots.txt, no text: set by the poll, which keeps the feed's summary)."""

    article: Article | None
    signature: tuple[int, ...] | None
    content_hash: str | None = None  # of the article's text
    merge_hash: str | None = None  # the hash to merge stories on (None: text too short)
    band_keys: tuple[int, ...] | None = None  # the signature's LSH bands, as the store keeps them
    error_reason: str | None = None
    error_message: str | None = None


def extract_page(content: bytes, url: str, content_type: str | None,
                 find_published: bool = True) -> PageText:
    """Extract one page (runs in a pool process); `NoText` crosses back as itself.
    `find_published`: as `extract_article`'s (False when the feed's entry has a date)."""
    article = extract_article(content, url=url, content_type=content_type,
                              find_published=find_published)
    digest = content_hash(article.text)
    near, merge = signature_and_merge_hash(article.text, digest)
    return PageText(article, near, content_hash=digest, merge_hash=merge,
                    band_keys=tuple(band_keys(near)) if near else None)


def _parsed(feed: FeedToParse) -> ParsedFeed | Exception:
    content, url, headers = feed
    try:
        return parse_feed(content, url=url, headers=headers)
    except Exception as exc:
        return exc


def parse_feeds(feeds: list[FeedToParse]) -> list[object]:
    """Parse each feed (in a pool process): its `ParsedFeed`, or the exception it raised, which
    comes back as itself with its traceback as its cause, as a task's does (one broken feed
    does not stop the others)."""
    return [_ExceptionWithTraceback(outcome, outcome.__traceback__)
            if isinstance(outcome, Exception) else outcome for outcome in map(_parsed, feeds)]


# Under 100 words (so the precise pass runs too) but over 40 (a signature is made), a title, a
# date for htmldate to find, a language: the paths of a real first page.
_WARM_UP_PAGE = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Warm-up</title>"
                 "<meta name='date' content='2025-03-01'>"
                 "</head><body><nav><a href='/'>Home</a></nav><article><h1>Warm-up</h1>"
                 + "".join(f"<p>Paragraph {n} of the page every extraction process reads once, "
                           "before its first real page, to load its code.</p>" for n in range(4))
                 + "</article></body></html>").encode()


def warm_up() -> None:
    """Run once in the fork server, before any pool process is forked from it: the code and
    tables a process otherwise loads on its first pages (justext's stop words, the numpy module
    that ``unique`` imports, htmldate's first run: about 0.15 s of CPU in each pool process, at
    the start of the first burst) are then inherited."""
    warm_up_extraction()
    # A later trafilatura that finds no text in this page only leaves the pool less warm.
    with contextlib.suppress(NoText):
        extract_page(_WARM_UP_PAGE, "https://example.org/news/warm-up", "text/html")


def _pool_process_start(owner_pid: int) -> None:
    """Pool process initializer: ignore SIGINT, and exit once the worker that started the pool
    is gone.

    Ctrl-C sends SIGINT to the whole process group: the worker handles the stop (and closes
    the pool); a pool process would only print a KeyboardInterrupt traceback. A worker killed
    with SIGKILL (or leaving with os._exit on a second signal) never closes its pool, and
    nothing else would tell its processes, which would wait for work forever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while process_alive(owner_pid):
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="owner-watch", daemon=True).start()


def pool_size(configured: int) -> int:
    """`configured` processes, or one per core this process may run on when it is 0."""
    if configured > 0:
        return configured
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _start_every_process(pool: ProcessPoolExecutor, processes: int) -> None:
    """Start all the pool's processes now, and the executor's thread that hands them work and
    stops them at shutdown. The executor starts one more process at a task only when none is
    idle: N quick tasks sent in a row start fewer than N when the first process is done before
    the next task is sent (as happens when the fork server is already up), and the others would
    start under load instead. Its own way of starting them all at once (for the fork start
    method) is not public: without it, the tasks alone start them, as before."""
    with contextlib.suppress(AttributeError):
        pool._launch_processes()
    for _ in range(processes):  # the first starts the executor's thread
        pool.submit(os.getpid)


def _widen_task_pipe(pool: ProcessPoolExecutor) -> None:
    """Let the pipe that carries the tasks hold ``TASK_PIPE_BYTES``. Through a 64 KiB pipe a page
    goes in three writes by the worker's queue-feeding thread, each once the pool process has
    read the last and once that thread has the GIL again (the database threads hold it for
    milliseconds at a time): the pool process waited between pages meanwhile. In the burst of
    bench/burst.py, the time between pages in each pool process fell from 0.6-0.95 s to
    0.36-0.5 s (of 6-9 s) with the wider pipe. It reaches into the executor's queue (there is no
    public way): on a Python without it, or off Linux, the pipe stays as it is."""
    with contextlib.suppress(AttributeError, OSError):
        writer = pool._call_queue._writer
        fcntl.fcntl(writer.fileno(), fcntl.F_SETPIPE_SZ, TASK_PIPE_BYTES)


class CpuWork:
    """The process pool, started when work is near (`start_soon`) or first asked for; `close()`
    stops it."""

    def __init__(self, processes: int) -> None:
        self.processes = pool_size(processes)
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()  # the pool is made once, in a thread (see `_started`)
        self._starting: asyncio.Future | None = None  # that thread's work (`_pool_starting`)
        self._feeds_to_parse: list[tuple[FeedToParse, asyncio.Future]] = []  # `_parse_soon`
        self._batches: set[asyncio.Task] = set()

    def start_soon(self) -> None:
        """Start the pool's processes without waiting: work is coming (a feed brought news) and
        its pages are still being fetched."""
        if self._pool is None:
            self._pool_starting()

    def _pool_starting(self) -> asyncio.Future:
        """The pool being made (`_started`, in one of the loop's default threads): one thread
        for every poll and page that asks before the pool is ready. A thread each would hold
        the few default threads that the database calls need too, until the fork server is
        ready (its imports take a third of a second): in the burst of bench/burst.py the look-ups
        of the 12 feeds, and so the fetching of their pages, waited for the pool."""
        loop = asyncio.get_running_loop()
        if self._starting is None or self._starting.done() or self._starting.get_loop() is not loop:
            start_fork_server()  # from the loop's thread, the main one in `monitor run`
            self._starting = loop.run_in_executor(None, self._started)
        return self._starting

    def _started(self) -> ProcessPoolExecutor:
        """The pool, its processes started. Blocks until the fork server is ready (it may still
        be importing): runs in a thread, never on the loop."""
        with self._lock:
            if self._pool is None:
                pool = ProcessPoolExecutor(self.processes, mp_context=fork_server_context(),
                                           initializer=_pool_process_start, initargs=(os.getpid(),))
                _widen_task_pipe(pool)
                _start_every_process(pool, self.processes)
                self._pool = pool
            return self._pool

    async def _run(self, function, *args):
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            # Shielded: a poll cancelled while it waits must not cancel the others' wait.
            pool = self._pool or await asyncio.shield(self._pool_starting())
            try:
                return await loop.run_in_executor(pool, function, *args)
            except BrokenProcessPool:
                if attempt == 2:
                    raise
                # A process died (killed, out of memory): start a new pool and try once more.
                log.warning("an extraction process died; starting a new pool")
                await loop.run_in_executor(None, self._replace, pool)

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is broken:
                self._pool = None
        broken.shutdown(wait=True, cancel_futures=True)

    async def parse_feed(self, content: bytes, url: str, headers: Mapping[str, str]) -> ParsedFeed:
        """`monitor.feeds.parse.parse_feed`, in a pool process for a large feed, and for a small
        one once the pool runs (in a batch, `_parse_soon`); before, a small one is parsed at
        once rather than start the pool. Raises what it raises, wherever it was parsed."""
        if len(content) > INLINE_PARSE_BYTES:
            # NotAFeed raised in the pool process comes back pickled, as itself (see errors.py).
            return await self._run(partial(parse_feed, content, url=url, headers=dict(headers)))
        if self._pool is None:
            return parse_feed(content, url=url, headers=headers)
        return await self._parse_soon((content, url, dict(headers)))

    def _parse_soon(self, feed: FeedToParse) -> asyncio.Future:
        """The feed's outcome, once it is parsed with the others asked for in this turn of the
        loop."""
        loop = asyncio.get_running_loop()
        waiter = loop.create_future()
        if not self._feeds_to_parse:
            loop.call_soon(self._send_feeds)
        self._feeds_to_parse.append((feed, waiter))
        return waiter

    def _send_feeds(self) -> None:
        """The feeds asked for, a batch for each pool process."""
        waiting, self._feeds_to_parse = self._feeds_to_parse, []
        share = -(-len(waiting) // self.processes)
        for start in range(0, len(waiting), share):
            task = asyncio.ensure_future(self._parse_batch(waiting[start:start + share]))
            self._batches.add(task)  # referenced until done (the loop keeps weak references)
            task.add_done_callback(self._batches.discard)

    async def _parse_batch(self, batch: list[tuple[FeedToParse, asyncio.Future]]) -> None:
        feeds = [feed for feed, _ in batch]
        try:
            outcomes = await self._run(parse_feeds, feeds)
        except asyncio.CancelledError:  # the pool closed: the worker stops
            for _, waiter in batch:
                waiter.cancel()
            raise
        except Exception as exc:  # the pool failed twice (`_run`), or the batch could not
            # come back: its feeds are parsed here, as without a pool, none lost for another.
            log.warning("%d feeds parsed in the worker: the pool failed (%s: %s)",
                        len(feeds), type(exc).__name__, exc)
            outcomes = [_parsed(feed) for feed in feeds]
        for (_, waiter), outcome in zip(batch, outcomes, strict=True):
            if waiter.done():  # its poll was cancelled
                continue
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
            else:
                waiter.set_result(outcome)

    async def extract_page(self, content: bytes, url: str, content_type: str | None,
                           find_published: bool = True) -> PageText:
        return await self._run(extract_page, content, url, content_type, find_published)

    def close(self) -> None:
        """Stop the processes, and the work still running: the worker closes the pool once
        every poll has ended or been given up, so that work is nobody's (a page whose
        extraction outlived its poll's deadline, a large feed of a poll stopped by a signal),
        and waiting for it could keep `run --once` from exiting for as long as it takes."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        # No public way to end running work before Python 3.14 (`terminate_workers`).
        for process in list(pool._processes.values()):
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
