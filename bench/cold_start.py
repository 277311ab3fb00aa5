"""A cold start: thousands of brand-new feeds, each with one new page, against a bare pipeline.

    python bench/cold_start.py [--feeds 2000] [--hosts 250] [--workers 64]
                               [--count-feeds 250] [--postgres URL] [--statements]

nginx (bench/nginx.py; install it with ``apt-get install -y nginx``) serves FEEDS small RSS
feeds spread over HOSTS loopback addresses 127.0.3.1..127.0.3.HOSTS, each with one entry whose
link is a small article page on the same host (bench/steady_state.py's feeds and pages: about
180 words of French local news, no two pages near-duplicates).

1. monitor, through its command line (``python -m monitor run --once`` in a subprocess, on a
   fresh project: config/ copied from the project's, a temporary SQLite database;
   per_host_delay 0, schedule.workers WORKERS, per_host_connections 8, max_connections
   WORKERS, as bench/steady_state.py). Every feed is new: its feed fetched, its entry's page
   fetched, extracted, classified and stored. Figures: feeds/s by the cycle time monitor prints
   (the headline), by the span of its polls in the database and by the process's wall time;
   the CPU seconds of the process itself (steadier than the times on a busy machine).
   FEEDS ``ok`` polls, FEEDS items and every feed a source of one, or the bench fails.
2. Baseline, in this process, on the same URLs: aiohttp (one ClientSession,
   TCPConnector(limit=c)) fetching every feed, then every entry's page, each page's bytes
   handed as they arrive to ``trafilatura.extract`` in a ProcessPoolExecutor of one process per
   core (started and warmed before the clock starts), at c = 8, 16, 32, 64, best kept; every
   page must give a text. Ratio = monitor seconds / bare seconds (target <= 1.5). Beside it,
   the CPU seconds of each in all (monitor's process with its extraction processes, Python
   start-up included; the bare process with its pool during its best pass): once both cores
   are busy, the time ratio cannot fall much below the CPU ratio.
   Beside it, at that best concurrency, the bare pipeline doing the least of what monitor must:
   each feed parsed with feedparser and each page's text extracted, both in the pool, and
   every item stored in a SQLite file (one row with its URL unique, and its full-text entry,
   in one transaction at the end); its ratio is printed but not judged.
3. SQL statements per poll: a fresh project of the first COUNT_FEEDS feeds, polled by
   ``monitor.worker.daemon.run_once`` in this process with SQLAlchemy's cursor events counting
   every statement (SQLite's BEGIN IMMEDIATE included; COMMIT is not a statement there), on
   SQLite and on PostgreSQL when --postgres (default MONITOR_TEST_POSTGRES_URL, else the tests'
   server) is reachable (a schema of its own, dropped after). --statements prints the most
   frequent statements too.

Figures go to standard output; nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import feedparser
import psutil
import trafilatura
import yaml
from monitor_once import connect_database, cpu_seconds, print_rows
from nginx import loopback_addresses, nginx_binary, serve_static
from poll_throughput import COUNTER, schema_url
from steady_state import Cycle, ServedFeed, checked_cycle, project, publish_feeds

from monitor.rules import load_ruleset
from monitor.settings import load_settings
from monitor.store.engine import make_engine
from monitor.worker.daemon import run_once
from monitor.worker.initdb import initialise

CONCURRENCIES = (8, 16, 32, 64)
RATIO_TARGET = 1.5
_ITEM_LINK = re.compile(rb"<item>.*?<link>([^<]+)</link>", re.DOTALL)


@dataclass(frozen=True)
class Bare:
    best_seconds: float
    best_concurrency: int
    per_concurrency: dict[int, float]  # seconds
    best_cpu: float  # CPU seconds of the best pass: this process's and its pool's
    stored_seconds: float  # the pipeline with feedparser and a SQLite store, at the best c
    stored_cpu: float


@dataclass(frozen=True)
class Statements:
    backend: str
    polls: int
    new_items: int
    count: int
    frequent: list[tuple[str, int]]


# -- monitor ----------------------------------------------------------------------------------

def monitor_cycle(config: Path, feeds: Sequence[ServedFeed]) -> Cycle:
    """`monitor run --once` on the fresh project; SystemExit unless every feed got its item."""
    cycle = checked_cycle(config, 0, len(feeds), "ok", "cold cycle")
    with connect_database(config) as db:
        stored = db.execute("SELECT count(*) FROM items WHERE feed_id IS NOT NULL").fetchone()[0]
        sourced = db.execute("SELECT count(DISTINCT feed_id) FROM item_sources").fetchone()[0]
    if stored != len(feeds) or sourced != len(feeds):
        raise SystemExit(f"{stored} items stored and {sourced} feeds a source of one, not "
                         f"{len(feeds)}: every feed's page is served; see "
                         f"{config.parent.parent / 'once.err'}")
    return cycle


def count_statements(folder: Path, feeds: Sequence[ServedFeed], workers: int,
                     database_url: str | None, backend: str) -> Statements:
    """`run_once` in this process on a fresh project of `feeds`, its SQL statements counted."""
    config = project(folder, feeds, workers)
    if database_url is not None:
        values = yaml.safe_load(config.read_text())
        values["database_url"] = database_url
        config.write_text(yaml.safe_dump(values, sort_keys=False))
    settings = load_settings(config, environ={})
    initialise(settings, make_engine(settings.database_url), load_ruleset(settings.rules_file))
    COUNTER.statements, COUNTER.texts = 0, {}
    report = run_once(settings)
    if report.new_items != len(feeds):
        raise SystemExit(f"statement count on {backend}: {report.new_items} new items, not "
                         f"{len(feeds)}")
    return Statements(backend, report.feeds, report.new_items, COUNTER.statements,
                      Counter(COUNTER.texts).most_common(12))


# -- the baseline -----------------------------------------------------------------------------

def _extract_text(html: bytes) -> str:
    return trafilatura.extract(html) or ""


def _extract(html: bytes) -> int:
    return len(_extract_text(html))


def _entry_links(feed: bytes) -> list[str]:
    return [entry.link for entry in feedparser.parse(feed).entries if entry.get("link")]


async def _stored_pass(feed_urls: Sequence[str], pool: ProcessPoolExecutor, concurrency: int,
                       database: Path) -> int:
    """Every feed parsed with feedparser, then every entry's page extracted, both in `pool`,
    and the items stored in a SQLite file with their full-text entries: the items stored."""
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def bodies(urls: Sequence[str]) -> list[bytes]:
            """The bodies of `urls`, in their order."""
            pending, found = iter(enumerate(urls)), [b""] * len(urls)

            async def worker() -> None:
                for index, url in pending:
                    async with session.get(url) as response:
                        found[index] = await response.read()

            await asyncio.gather(*(worker() for _ in range(concurrency)))
            return found

        parsed = [loop.run_in_executor(pool, _entry_links, body)
                  for body in await bodies(feed_urls)]
        links = [link for found in await asyncio.gather(*parsed) for link in found]
        pages = dict(zip(links, await bodies(links), strict=True))
        texts = await asyncio.gather(*(loop.run_in_executor(pool, _extract_text, page)
                                       for page in pages.values()))
    with sqlite3.connect(database) as db:
        db.executescript("PRAGMA journal_mode=WAL; CREATE TABLE items (id INTEGER PRIMARY KEY, "
                         "url TEXT UNIQUE, text TEXT); CREATE VIRTUAL TABLE items_text "
                         "USING fts5(text);")
        db.executemany("INSERT INTO items (url, text) VALUES (?, ?)",
                       zip(pages, texts, strict=True))
        db.execute("INSERT INTO items_text (rowid, text) SELECT id, text FROM items")
        return db.execute("SELECT count(*) FROM items WHERE text != ''").fetchone()[0]


async def _bare_pass(feed_urls: Sequence[str], pool: ProcessPoolExecutor,
                     concurrency: int) -> list[int]:
    """Every feed, then every entry's page, extracted in `pool`: the texts' lengths."""
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def fetch_all(urls: Sequence[str], on_body) -> None:
            pending = iter(urls)

            async def worker() -> None:
                for url in pending:
                    async with session.get(url) as response:
                        on_body(await response.read())

            await asyncio.gather(*(worker() for _ in range(concurrency)))

        links: list[str] = []
        await fetch_all(feed_urls, lambda body: links.extend(
            link.decode() for link in _ITEM_LINK.findall(body)))
        extractions: list[asyncio.Future] = []
        await fetch_all(links, lambda body: extractions.append(
            loop.run_in_executor(pool, _extract, body)))
        return list(await asyncio.gather(*extractions))


def _cpu_in_all() -> float:
    """CPU seconds of this process and of its live children (the pool's processes)."""
    me = psutil.Process()
    return sum(cpu_seconds(process) for process in (me, *me.children()))


def bare_pipeline(feed_urls: Sequence[str], folder: Path) -> Bare:
    seconds, cpu = {}, {}
    with ProcessPoolExecutor(os.cpu_count()) as pool:
        # Warm-up: every process started and trafilatura's data loaded before the clock starts.
        list(pool.map(_extract, [b"<html><body><p>warm up</p></body></html>"] * 8))
        for concurrency in CONCURRENCIES:
            started, cpu_before = time.perf_counter(), _cpu_in_all()
            lengths = asyncio.run(_bare_pass(feed_urls, pool, concurrency))
            seconds[concurrency] = time.perf_counter() - started
            cpu[concurrency] = _cpu_in_all() - cpu_before
            if len(lengths) != len(feed_urls) or not all(lengths):
                raise SystemExit(f"bare pipeline at concurrency {concurrency}: "
                                 f"{sum(map(bool, lengths))} texts of {len(feed_urls)} pages")
        best = min(seconds, key=seconds.__getitem__)
        started, cpu_before = time.perf_counter(), _cpu_in_all()
        stored = asyncio.run(_stored_pass(feed_urls, pool, best, folder / "bare.db"))
        stored_seconds, stored_cpu = time.perf_counter() - started, _cpu_in_all() - cpu_before
    if stored != len(feed_urls):
        raise SystemExit(f"bare pipeline with a store: {stored} items of {len(feed_urls)}")
    return Bare(seconds[best], best, seconds, cpu[best], stored_seconds, stored_cpu)


# -- the run ----------------------------------------------------------------------------------

def _postgres_url(url: str) -> str | None:
    try:
        with make_engine(url).connect():
            return url
    except Exception as exc:  # no server: the SQLite count alone
        print(f"PostgreSQL not reachable at {url} ({exc.__class__.__name__}); SQLite only")
        return None


def measure(args: argparse.Namespace, tmp: Path) -> tuple[Cycle, Bare, list[Statements]]:
    hosts = loopback_addresses("127.0.3.0/24", args.hosts)
    with serve_static(tmp / "www", hosts) as site:
        feeds = publish_feeds(tmp / "www", site, args.feeds, lambda n: 1)
        print(f"nginx (1 worker process) on {len(hosts)} loopback hosts, port {site.port}; "
              f"{len(feeds)} new feeds of one new entry each; monitor with schedule.workers "
              f"{args.workers}")
        cycle = monitor_cycle(project(tmp / "cold", feeds, args.workers), feeds)
        bare = bare_pipeline([feed.url for feed in feeds], tmp)
        counts = [count_statements(tmp / "count-sqlite", feeds[:args.count_feeds],
                                   args.workers, None, "SQLite")]
        postgres = _postgres_url(args.postgres) if args.postgres else None
        if postgres:
            scoped, admin, schema = schema_url(postgres)
            try:
                counts.append(count_statements(tmp / "count-postgres", feeds[:args.count_feeds],
                                               args.workers, scoped, "PostgreSQL"))
            finally:
                with admin.begin() as conn:
                    conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
                admin.dispose()
    return cycle, bare, counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=250)
    parser.add_argument("--workers", type=int, default=64, help="schedule.workers for monitor")
    parser.add_argument("--count-feeds", type=int, default=250,
                        help="feeds of the in-process statement count")
    parser.add_argument("--postgres", default=os.environ.get(
        "MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
        help="'' to count on SQLite alone")
    parser.add_argument("--statements", action="store_true",
                        help="print the most frequent statements of each count")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 254 or args.feeds < 1 or not 1 <= args.count_feeds <= args.feeds:
        parser.error("--hosts must be 1..254 (127.0.3.1..127.0.3.254), --feeds at least 1, "
                     "--count-feeds 1..FEEDS")
    nginx_binary()  # says how to install nginx when it is missing
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        cycle, bare, counts = measure(args, Path(folder))

    run = cycle.run
    seconds = run.reported_seconds or run.wall_seconds
    ratio = seconds / bare.best_seconds
    # With both cores busy, the time ratio cannot go much below this one.
    cpu_in_all = run.cpu.parent + run.cpu.pool
    rows = [
        ("monitor, cycle time it prints (headline)",
         f"{args.feeds / seconds:,.0f} feeds/s", "", ""),
        ("monitor, first poll start to last poll end (database)",
         f"{args.feeds / cycle.poll_span:,.0f} feeds/s", "", ""),
        ("monitor, process wall time (with Python start-up)",
         f"{args.feeds / run.wall_seconds:,.0f} feeds/s", "", ""),
        ("monitor, CPU of the run --once process (extraction processes apart)",
         f"{run.cpu.parent:.1f} s", "", ""),
        (f"bare aiohttp + trafilatura pool, best (c={bare.best_concurrency})",
         f"{args.feeds / bare.best_seconds:,.0f} feeds/s", "", ""),
        ("ratio monitor s / bare s", f"{seconds:.1f}/{bare.best_seconds:.1f} = {ratio:.2f}",
         f"<= {RATIO_TARGET}", "PASS" if ratio <= RATIO_TARGET else "FAIL"),
        ("CPU in all, monitor (process + extraction processes) / bare (process + pool, best "
         "pass)", f"{cpu_in_all:.1f}/{bare.best_cpu:.1f} = {cpu_in_all / bare.best_cpu:.2f}",
         "", ""),
        (f"bare with feedparser and a SQLite store (c={bare.best_concurrency})",
         f"{args.feeds / bare.stored_seconds:,.0f} feeds/s", "", ""),
        ("ratio monitor s / that bare s (beside)",
         f"{seconds:.1f}/{bare.stored_seconds:.1f} = {seconds / bare.stored_seconds:.2f}", "", ""),
        ("CPU in all, monitor / that bare (beside)",
         f"{cpu_in_all:.1f}/{bare.stored_cpu:.1f} = {cpu_in_all / bare.stored_cpu:.2f}", "", ""),
        *((f"SQL statements per poll, {c.backend} ({c.polls} new feeds, run_once)",
           f"{c.count / c.polls:.1f}", "", "") for c in counts),
    ]
    print(f"\n== cold start: {args.feeds} new feeds on {args.hosts} hosts, one new page each "
          f"(whole bench {time.perf_counter() - began:.0f} s)")
    print("  bare passes: " + ", ".join(f"c={c}: {args.feeds / s:,.0f} feeds/s"
                                        for c, s in bare.per_concurrency.items()))
    if args.statements:
        for c in counts:
            print(f"  most frequent statements, {c.backend}:")
            for text, n in c.frequent:
                print(f"    {n / c.polls:6.2f}/poll  {text}")
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
