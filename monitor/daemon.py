"""The service: one worker process, a pool of poll threads, config reload, clean shutdown.

In: `Settings`. Out: polls, until stopped. `run_once` polls every enabled feed once and
returns; `run_daemon` ticks every ``schedule.tick`` seconds (APScheduler): it re-reads
feeds.yaml and rules.yaml when they change (an invalid edit is logged and the last good version
kept) and leases the feeds that are due; it also leases more as soon as a poll thread frees up,
so a busy worker never waits for the next tick. Leases carry the worker's identity
(``host:pid:nonce``) and are renewed from their own thread while the worker lives, so several
workers, on one machine (`supervisor.py`) or several, share one PostgreSQL. The first
SIGTERM/SIGINT stops taking work and lets in-flight polls stop between two entries; a second one
exits at once. A worker started by `monitor run --workers N` also stops when its parent is gone.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from apscheduler.schedulers.background import BackgroundScheduler

from monitor import USER_AGENT
from monitor.corpus import Corpus
from monitor.errors import ConfigError
from monitor.fetch import Fetcher, FetchLimits
from monitor.hostgate import HostGate
from monitor.pipeline import PollContext, now_utc, poll_feed
from monitor.rules import RuleSet, load_ruleset
from monitor.settings import Settings, load_feeds
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import create_schema, describe_url, make_engine
from monitor.store.feeds import (
    FeedRow,
    PollRecord,
    claim_due_feeds,
    release_dead_leases,
    release_leases,
    renew_leases,
    sync_feeds,
)

log = logging.getLogger("monitor.daemon")
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass(frozen=True)
class CycleReport:
    feeds: int
    ok: int
    errors: int
    new_items: int
    relevant_items: int
    seconds: float


class ConfigWatch:
    """Reloads a configuration file when its modification time changes; keeps the last good."""

    def __init__(self, path: Path, load: Callable, what: str) -> None:
        self.path, self._load, self.what = path, load, what
        self._stamp = self._stat()
        self.value = load(path)  # the first load must succeed: errors go to the caller

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def refresh(self) -> bool:
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            self.value = self._load(self.path)
        except ConfigError as exc:
            log.error("%s not reloaded, keeping the last good version: %s", self.what, exc)
            return False
        log.info("%s reloaded from %s", self.what, self.path)
        return True


def build_context(settings: Settings, stop: threading.Event,
                  rules: Callable[[], RuleSet], *, worker: str | None = None) -> PollContext:
    http = settings.http
    limits = FetchLimits(connect_timeout=http.connect_timeout, read_timeout=http.read_timeout,
                         deadline=http.deadline, max_bytes=http.max_page_bytes,
                         max_redirects=http.max_redirects,
                         allow_private_networks=http.allow_private_networks)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    return PollContext(
        settings=settings, engine=engine, fetcher=Fetcher(limits, user_agent=USER_AGENT),
        gate=HostGate(per_host_connections=http.per_host_connections,
                      per_host_delay=http.per_host_delay),
        corpus=Corpus(settings.corpus_dir, CorpusNumbers(engine)), rules=rules, stop=stop,
        worker=worker,
    )


class PollWorkers:
    """N daemon threads polling the feeds put on their queue."""

    def __init__(self, ctx: PollContext, count: int,
                 on_done: Callable[[PollRecord], None] | None = None) -> None:
        self.ctx = ctx
        self._on_done = on_done
        self._queue: queue.Queue[FeedRow | None] = queue.Queue()
        self.freed = threading.Event()  # set each time a poll ends: there is room for one more
        self._busy = 0
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, name=f"poll-{i}", daemon=True)
                         for i in range(count)]
        for thread in self._threads:
            thread.start()

    @property
    def capacity(self) -> int:
        with self._lock:
            return max(len(self._threads) - self._busy - self._queue.qsize(), 0)

    def submit(self, feed: FeedRow) -> None:
        self._queue.put(feed)

    def _work(self) -> None:
        while True:
            feed = self._queue.get()
            if feed is None:
                self._queue.task_done()
                return
            with self._lock:
                self._busy += 1
            try:
                if not self.ctx.stop.is_set():
                    record = poll_feed(self.ctx, feed)
                    if self._on_done is not None:
                        self._on_done(record)
            except Exception:  # e.g. the database went away while recording: keep the thread
                log.exception("the poll of %s could not be recorded; it will be polled again "
                              "when its lease expires", feed.url)
            finally:
                with self._lock:
                    self._busy -= 1
                self._queue.task_done()
                self.freed.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait until the queue is drained; False if `timeout` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True


class LeaseKeeper:
    """Renews a worker's leases every third of the lease time, from its own thread, so a long
    poll (or a long `--once` run) keeps its feeds; a worker that dies stops renewing, and its
    feeds go back to the pool when the lease expires."""

    def __init__(self, engine, owner: str, lease: float) -> None:
        self.engine, self.owner, self.lease = engine, owner, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                renew_leases(self.engine, self.owner,
                             now_utc() + timedelta(seconds=self.lease))
            except Exception:  # the database may be back at the next attempt
                log.exception("could not renew the leases of %s", self.owner)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_local_worker(owner: str) -> bool:
    """True for a worker identity of this host whose process no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _take_over_dead_leases(ctx: PollContext) -> None:
    for owner in release_dead_leases(ctx.engine, is_dead_local_worker):
        log.warning("released the leases of %s, a worker that died without releasing them",
                    owner)


def run_once(settings: Settings) -> CycleReport:
    """Poll every enabled feed once, whatever its schedule."""
    clock = time.monotonic()
    rules = load_ruleset(settings.rules_file)
    specs = load_feeds(settings.feeds_file)
    owner = worker_identity()
    ctx = build_context(settings, threading.Event(), lambda: rules, worker=owner)
    keeper = LeaseKeeper(ctx.engine, owner, settings.schedule.lease)
    try:
        sync_feeds(ctx.engine, specs, now_utc())
        _take_over_dead_leases(ctx)
        now = now_utc()
        feeds = claim_due_feeds(ctx.engine, owner=owner, now=now, due_only=False,
                                lease_until=now + timedelta(seconds=settings.schedule.lease),
                                limit=1_000_000)
        records: list[PollRecord] = []
        workers = PollWorkers(ctx, min(settings.schedule.workers, max(len(feeds), 1)),
                              on_done=records.append)
        for feed in feeds:
            workers.submit(feed)
        workers.join()
    finally:
        keeper.close()
        release_leases(ctx.engine, owner)
        ctx.fetcher.close()
    return CycleReport(
        feeds=len(records), ok=sum(r.status != "error" for r in records),
        errors=sum(r.status == "error" for r in records),
        new_items=sum(r.new_items for r in records),
        relevant_items=sum(r.relevant_items for r in records),
        seconds=time.monotonic() - clock,
    )


def run_daemon(settings: Settings, *, parent_pid: int | None = None) -> None:
    """Poll due feeds until SIGTERM/SIGINT (or until `parent_pid` is no longer our parent)."""
    feeds_watch = ConfigWatch(settings.feeds_file, load_feeds, "feeds file")
    rules_watch = ConfigWatch(settings.rules_file, load_ruleset, "rules file")
    stop = threading.Event()
    owner = worker_identity()
    ctx = build_context(settings, stop, lambda: rules_watch.value, worker=owner)
    sync_feeds(ctx.engine, feeds_watch.value, now_utc())
    _take_over_dead_leases(ctx)
    workers = PollWorkers(ctx, settings.schedule.workers)
    claiming = threading.Lock()

    def fill() -> None:
        """Lease as many due feeds as there are idle poll threads."""
        with claiming:
            free = workers.capacity
            if free and not stop.is_set():
                now = now_utc()
                for feed in claim_due_feeds(
                    ctx.engine, owner=owner, now=now, limit=free,
                    lease_until=now + timedelta(seconds=settings.schedule.lease),
                ):
                    workers.submit(feed)

    def tick() -> None:
        if stop.is_set():
            return
        try:
            if parent_pid is not None and os.getppid() != parent_pid:
                log.warning("the parent process %d is gone: stopping", parent_pid)
                stop.set()
                return
            if feeds_watch.refresh():
                report = sync_feeds(ctx.engine, feeds_watch.value, now_utc())
                if report:
                    log.info("feeds updated: %d added, %d removed, %d changed",
                             len(report.added), len(report.removed), len(report.changed))
            rules_watch.refresh()
            fill()
        except Exception:  # the next tick tries again; never let the scheduler die
            log.exception("scheduler tick failed")

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(tick, "interval", seconds=settings.schedule.tick, id="tick",
                      max_instances=1, coalesce=True, next_run_time=now_utc())
    signals = {"count": 0}

    def on_signal(signum, _frame) -> None:
        signals["count"] += 1
        if signals["count"] > 1:
            log.warning("second signal: exiting now")
            os._exit(1)
        log.info("%s received: finishing in-flight polls (send again to force)",
                 signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    log.info("monitor started: %d feeds, rules %s, database %s, worker %s",
             len(feeds_watch.value), rules_watch.value.version, describe_url(ctx.engine.url),
             owner)
    keeper = LeaseKeeper(ctx.engine, owner, settings.schedule.lease)
    scheduler.start()
    try:
        while not stop.is_set():
            if workers.freed.wait(0.5) and not stop.is_set():
                workers.freed.clear()
                try:
                    fill()
                except Exception:  # the next tick tries again
                    log.exception("claiming due feeds failed")
    finally:
        scheduler.shutdown(wait=False)
        if not workers.join(timeout=SHUTDOWN_GRACE_SECONDS):
            log.warning("some polls did not finish within %.0f s; their feeds will be polled "
                        "again", SHUTDOWN_GRACE_SECONDS)
        keeper.close()
        release_leases(ctx.engine, owner)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("monitor stopped")
