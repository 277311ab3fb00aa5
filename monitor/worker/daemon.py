"""The service: one worker process, polls on an event loop, config reload, clean shutdown.

In: `Settings`. Out: polls, until stopped. A worker is one asyncio event loop that polls up to
``schedule.workers`` feeds at once (requests awaited, parsing and extraction in a process pool,
database calls in threads, poll outcomes written in batches). `run_once` polls every enabled
feed once and returns; `run_daemon` ticks every ``schedule.tick`` seconds (APScheduler): it
re-reads feeds.yaml and rules.yaml when they change (an invalid edit is logged and the last good
version kept) and leases the feeds that are due; it also leases more as soon as a poll ends, so
a busy worker never waits for the next tick; after each good tick it touches its heartbeat
(`heartbeat.py`, what `monitor healthcheck` reads). Leases carry the worker's identity
(``host:pid:nonce``) and are renewed from their own thread while the worker lives, so several
workers, on one machine (`supervisor.py`) or several, share one PostgreSQL. The first
SIGTERM/SIGINT stops taking work and lets in-flight polls stop between two entries; a second one
exits at once. A worker started by `monitor run --workers N` also stops when its parent is gone.
With alerts configured, their due outbox entries are sent every tick as well, in a thread of
their own (`sender.AlertSender`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta
from itertools import zip_longest
from pathlib import Path
from typing import TypeVar

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from monitor import USER_AGENT
from monitor.corpus import Corpus
from monitor.errors import StorageError
from monitor.fetch.client import Fetcher, FetchLimits
from monitor.fetch.hostgate import HostGate, host_of
from monitor.fetch.robots import RobotsCache
from monitor.rules import RuleSet, load_ruleset
from monitor.settings import FeedSpec, Settings, WatchedFile, load_feeds
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import create_schema, describe_url, make_engine, read_engine
from monitor.store.feeds import FeedRow, claim_due_feeds, release_leases, sync_feeds
from monitor.store.polls import PollRecord
from monitor.worker import eventloop
from monitor.worker.context import CycleTally, PollContext, now_utc
from monitor.worker.cpupool import CpuWork
from monitor.worker.heartbeat import Heartbeat, heartbeat_folder
from monitor.worker.leases import LeaseKeeper, take_over_dead_leases, worker_identity
from monitor.worker.pipeline import poll_feed
from monitor.worker.recorder import PollRecorder
from monitor.worker.sender import AlertSender

log = logging.getLogger("monitor.daemon")
SHUTDOWN_GRACE_SECONDS = 5.0
FIRST_CLAIM = 200  # `run --once`: feeds claimed before the polls start, the rest meanwhile
T = TypeVar("T")


@dataclass(frozen=True)
class CycleReport:
    feeds: int
    ok: int
    errors: int
    new_items: int
    relevant_items: int
    seconds: float  # the cycle: claiming the feeds, polling them, writing every outcome
    setup_seconds: float  # before it: reading the configuration, syncing the feeds table
    # Polls that could not store what they brought (storage-error) or whose outcome could not
    # be written: their entries are not seen, the next run tries them again.
    not_stored: int = 0

    def failure(self, *, strict: bool = False) -> str | None:
        """Why `run --once` exits 1 (anything not stored; every feed failed; with `strict`,
        any feed failed), or None."""
        if self.not_stored:
            return (f"{self.not_stored} of {self.feeds} polls could not be stored "
                    f"({StorageError.reason}); the next run tries them again")
        if self.feeds and not self.ok:
            return f"every feed failed ({self.errors} of {self.feeds})"
        if strict and self.errors:
            return f"{self.errors} of {self.feeds} feeds failed (--strict)"
        return None


def watch_config(path: Path, load: Callable[[Path], T]) -> WatchedFile[T]:
    """A configuration file read now and watched for edits: this first read must succeed (its
    ConfigError goes to the caller)."""
    watch = WatchedFile(path, load)
    watch.refresh()
    if watch.error is not None:
        raise watch.error
    return watch


def reload_config(watch: WatchedFile, what: str) -> bool:
    """Read `watch`'s file again if it changed. True when new contents are in force; an
    invalid edit is logged and the last good version kept."""
    if not watch.refresh():
        return False
    if watch.error is not None:
        log.error("%s not reloaded, keeping the last good version: %s", what, watch.error)
        return False
    log.info("%s reloaded from %s", what, watch.path)
    return True


def build_context(settings: Settings, stop: asyncio.Event,
                  rules: Callable[[], RuleSet], *, worker: str | None = None) -> PollContext:
    """Everything a poll needs; call it on the event loop that will run the polls."""
    http = settings.http
    engine = make_engine(settings.database_url)
    create_schema(engine)
    reader = (read_engine(settings.database_url) if engine.dialect.name == "sqlite"
              else engine)  # PostgreSQL readers never block writers anyway
    fetcher = Fetcher(FetchLimits.from_settings(http), max_connections=http.max_connections)
    gate = HostGate(per_host_connections=http.per_host_connections,
                    per_host_delay=http.per_host_delay)

    async def fetch_robots(url: str):
        async with gate.slot(url):
            return await fetcher.get(url)

    robots = (RobotsCache(fetch_robots, user_agent=USER_AGENT, ttl=http.robots_cache)
              if http.robots_txt else None)
    return PollContext(
        settings=settings, engine=engine, reader=reader, fetcher=fetcher, gate=gate, robots=robots,
        cpu=CpuWork(settings.schedule.extract_processes),
        corpus=Corpus(settings.corpus_dir, CorpusNumbers(engine)),
        recorder=PollRecorder(engine), rules=rules, stop=stop, worker=worker,
    )


def interleave_by_host(feeds: list[FeedRow]) -> list[FeedRow]:
    """The feeds in turns across hosts (first of each host, then second of each, ...), keeping
    each host's order: a run of one host's feeds would wait on that host's connection limit
    while other hosts sit idle."""
    by_host: dict[str, list[FeedRow]] = {}
    for feed in feeds:
        by_host.setdefault(host_of(feed.fetch_url), []).append(feed)
    turns = [feed for group in zip_longest(*by_host.values()) for feed in group]
    return [feed for feed in turns if feed is not None]


async def poll_all(ctx: PollContext, batches: AsyncIterator[list[FeedRow]],
                   concurrency: int) -> list[PollRecord]:
    """Poll the feeds of `batches` as they come, `concurrency` at a time, each batch in turns
    across hosts; stops taking feeds once `ctx.stop` is set."""
    queue: asyncio.Queue[FeedRow | None] = asyncio.Queue()
    records: list[PollRecord] = []

    async def fill() -> None:
        try:
            async for batch in batches:
                _start_pool_for_news(ctx, batch)
                for feed in interleave_by_host(batch):
                    queue.put_nowait(feed)
        finally:
            for _ in range(concurrency):
                queue.put_nowait(None)

    async def lane() -> None:
        while (feed := await queue.get()) is not None:
            if not ctx.stop.is_set():
                records.append(await poll_feed(ctx, feed))

    await asyncio.gather(fill(), *(lane() for _ in range(concurrency)))
    return records


def _start_pool_for_news(ctx: PollContext, feeds: list[FeedRow]) -> None:
    """Start the extraction processes now when a feed never fetched is among `feeds`: all its
    entries are news, and the processes' start (a third of a second) overlaps the fetching of
    its feed and pages instead of following it. A cycle of known feeds starts them only when
    one brings news (`poll_feed`): a cycle of 304s starts none."""
    if any(feed.never_fetched for feed in feeds):
        ctx.cpu.start_soon()


@asynccontextmanager
async def worker_context(settings: Settings, rules: Callable[[], RuleSet], stop: asyncio.Event,
                         owner: str):
    """The poll context with its lease keeper and batch writer running; on the way out, the
    outcomes are written, the leases released and the connections and processes closed."""
    ctx = build_context(settings, stop, rules, worker=owner)
    keeper = LeaseKeeper(ctx.engine, owner, settings.schedule.lease)
    writer = asyncio.create_task(ctx.recorder.run())
    try:
        yield ctx
    finally:
        ctx.recorder.stop()
        await writer
        keeper.close()
        try:
            await asyncio.to_thread(release_leases, ctx.engine, owner)
        except StorageError as exc:  # the rest must still be closed
            log.error("leases not released; their feeds are polled again once they expire: %s",
                      exc)
        await ctx.fetcher.close()
        await asyncio.to_thread(ctx.cpu.close)
        ctx.reader.dispose()
        ctx.engine.dispose()


def _on_signals(stop: asyncio.Event) -> Callable[[], None]:
    """Handle SIGTERM/SIGINT on the running loop: the first sets `stop`, a second exits now.
    Returns the function that puts the previous handlers back."""
    loop = asyncio.get_running_loop()
    count = 0

    def on_signal(signum: int) -> None:
        nonlocal count
        count += 1
        if count > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("%s received: finishing in-flight polls (send again to force)",
                 signal.Signals(signum).name)
        stop.set()

    try:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig)
    except (ValueError, RuntimeError):  # not the main thread (embedded use): no handlers
        return lambda: None

    def restore() -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    return restore


def run_once(settings: Settings, *, specs: Sequence[FeedSpec] | None = None,
             progress: Callable[[CycleTally], None] | None = None) -> CycleReport:
    """Poll every enabled feed once, whatever its schedule: those of feeds.yaml, or `specs`
    when the caller has read it already; `progress` is called with the counts so far as feeds
    are claimed and as each poll ends."""
    return eventloop.run(_run_once(settings, specs, progress))


async def _run_once(settings: Settings, specs: Sequence[FeedSpec] | None,
                    progress: Callable[[CycleTally], None] | None) -> CycleReport:
    started = time.monotonic()
    rules = load_ruleset(settings.rules_file)
    if specs is None:
        specs = load_feeds(settings.feeds_file)
    owner, stop = worker_identity(), asyncio.Event()
    restore = _on_signals(stop)
    try:
        async with worker_context(settings, lambda: rules, stop, owner) as ctx:
            await ctx.db(sync_feeds, specs, now_utc())
            await asyncio.to_thread(take_over_dead_leases, ctx.engine)
            cycle = time.monotonic()  # the cycle: claim, poll, every outcome written
            since = now_utc()
            counts = CycleTally()
            if progress is not None:
                ctx.on_poll = lambda record, tally: (counts.add(record, tally), progress(counts))

            async def every_feed() -> AsyncIterator[list[FeedRow]]:
                # A first small claim gets the polls going while the rest is claimed.
                for limit in (FIRST_CLAIM, None):
                    now = now_utc()
                    claimed = await ctx.db(
                        claim_due_feeds, owner=owner, now=now, due_only=False,
                        polled_before=since, limit=limit or 10_000_000,
                        lease_until=now + timedelta(seconds=settings.schedule.lease))
                    counts.feeds += len(claimed)
                    if progress is not None:
                        progress(counts)
                    yield claimed

            records = await poll_all(ctx, every_feed(), settings.schedule.workers)
            await ctx.recorder.flush()
            finished = time.monotonic()
        # after the recorder's last write, on the way out of the context
        unwritten = {id(record) for record in ctx.recorder.waiting}
    finally:
        restore()
    return CycleReport(
        feeds=len(records), ok=sum(r.status != "error" for r in records),
        errors=sum(r.status == "error" for r in records),
        new_items=sum(r.new_items for r in records),
        relevant_items=sum(r.relevant_items for r in records),
        seconds=finished - cycle, setup_seconds=cycle - started,
        not_stored=sum(r.error_reason == StorageError.reason or id(r) in unwritten
                       for r in records),
    )


def run_daemon(settings: Settings, *, parent_pid: int | None = None) -> None:
    """Poll due feeds until SIGTERM/SIGINT (or until `parent_pid` is no longer our parent)."""
    feeds_watch = watch_config(settings.feeds_file, load_feeds)
    rules_watch = watch_config(settings.rules_file, load_ruleset)
    eventloop.run(_serve(settings, feeds_watch, rules_watch, parent_pid))


async def _serve(settings: Settings, feeds_watch: WatchedFile[tuple[FeedSpec, ...]],
                 rules_watch: WatchedFile[RuleSet], parent_pid: int | None) -> None:
    owner, stop = worker_identity(), asyncio.Event()
    restore = _on_signals(stop)
    slots = settings.schedule.workers
    running: set[asyncio.Task] = set()
    freed = asyncio.Event()  # set each time a poll ends: there is room for one more
    claiming = asyncio.Lock()
    heartbeat = Heartbeat(heartbeat_folder(settings.config_path))
    try:
        async with worker_context(settings, lambda: rules_watch.value, stop, owner) as ctx:
            await ctx.db(sync_feeds, feeds_watch.value, now_utc())
            await asyncio.to_thread(take_over_dead_leases, ctx.engine)

            async def fill() -> None:
                """Lease as many due feeds as there are free poll slots."""
                async with claiming:
                    free = slots - len(running)
                    if free <= 0 or stop.is_set():
                        return
                    now = now_utc()
                    feeds = await ctx.db(
                        claim_due_feeds, owner=owner, now=now, limit=free,
                        lease_until=now + timedelta(seconds=settings.schedule.lease))
                    _start_pool_for_news(ctx, feeds)
                    for feed in interleave_by_host(feeds):
                        task = asyncio.create_task(poll_feed(ctx, feed))
                        running.add(task)
                        task.add_done_callback(lambda t: (running.discard(t), freed.set()))

            async def tick() -> None:
                if stop.is_set():
                    return
                try:
                    if parent_pid is not None and os.getppid() != parent_pid:
                        log.warning("the parent process %d is gone: stopping", parent_pid)
                        stop.set()
                        return
                    if await asyncio.to_thread(reload_config, feeds_watch, "feeds file"):
                        report = await ctx.db(sync_feeds, feeds_watch.value, now_utc())
                        if report:
                            log.info("feeds updated: %d added, %d removed, %d changed",
                                     len(report.added), len(report.removed),
                                     len(report.changed))
                    await asyncio.to_thread(reload_config, rules_watch, "rules file")
                    await fill()
                    heartbeat.beat()  # `monitor healthcheck`: this worker ticks
                except Exception:  # the next tick tries again; never let the scheduler die
                    log.exception("scheduler tick failed")

            scheduler = AsyncIOScheduler(timezone="UTC")
            scheduler.add_job(tick, "interval", seconds=settings.schedule.tick, id="tick",
                              max_instances=1, coalesce=True, next_run_time=now_utc())
            sender = AlertSender(ctx.engine, settings, owner, stop)
            if settings.alerts:  # in a thread of its own: a slow service never holds the polls
                scheduler.add_job(sender.run, "interval", seconds=settings.schedule.tick,
                                  id="alerts", max_instances=1, coalesce=True,
                                  next_run_time=now_utc())
            log.info("monitor started: %d feeds, rules %s, database %s, worker %s",
                     len(feeds_watch.value), rules_watch.value.version,
                     describe_url(ctx.engine.url), owner)
            scheduler.start()
            try:
                while not stop.is_set():
                    with suppress(TimeoutError):
                        await asyncio.wait_for(freed.wait(), 0.5)
                    if freed.is_set() and not stop.is_set():
                        freed.clear()
                        try:
                            await fill()
                        except Exception:  # the next tick tries again
                            log.exception("claiming due feeds failed")
            finally:
                scheduler.shutdown(wait=False)
                await _finish(running)
                await sender.close(SHUTDOWN_GRACE_SECONDS)
    finally:
        heartbeat.close()
        restore()
    log.info("monitor stopped")


async def _finish(running: set[asyncio.Task]) -> None:
    """Let in-flight polls end (they stop between two entries), then cancel the stragglers."""
    if not running:
        return
    _, late = await asyncio.wait(set(running), timeout=SHUTDOWN_GRACE_SECONDS)
    if late:
        log.warning("some polls did not finish within %.0f s; their feeds will be polled "
                    "again", SHUTDOWN_GRACE_SECONDS)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

