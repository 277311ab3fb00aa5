"""How far one worker goes, and what the database does per poll and per item, in one run.

    python bench/poll_throughput.py [--feeds N] [--entries E] [--threads T] [--postgres URL]
                                    [--claim-rows R ...]

1. One worker, end to end, on each backend (a temporary SQLite file, and PostgreSQL when
   --postgres or MONITOR_TEST_POSTGRES_URL names a reachable server: a fresh schema, dropped
   after). N feeds (default 100) of E entries (default 10) are served from loopback addresses
   127.0.0.50-57 by a separate process (so the worker's CPU figures are its own); the article
   pages are the real news pages of tests/fixtures/articles (about 70 KB each), one in five a
   seed text (relevant: a corpus file is written). The worker is `monitor.worker.daemon.run_once`,
   in this process, polling T feeds at once (``schedule.workers``, default 8). Three cycles:
     cold    every entry is new: page fetched, text extracted, classified, stored;
     steady  each feed has one new entry among E known ones (a typical changed feed);
     quiet   nothing changed: every feed answers 304 Not Modified.
   For each: wall time, polls/s, items/s, the worker's CPU milliseconds per poll and per item,
   and SQL statements per poll and per item (counted by SQLAlchemy cursor events: every
   statement, SQLite's BEGIN IMMEDIATE included; COMMIT is not a statement there).
2. The database alone, PostgreSQL: a feeds table of R rows (default 100,000 and 1,000,000,
   all due), 4 client processes x 4 threads doing for 10 s what workers do per poll: claim 4
   feeds (UPDATE ... FOR UPDATE SKIP LOCKED), then one transaction per feed writing its poll
   row and feed state. Prints the polls/s recorded and the claim's median time (client and
   server share the machine's cores), and the CPU seconds the server's backends spent per
   poll (read from /proc: the server must run on this machine). Then 2,000 items of seed-sized
   texts stored by 4 processes: items/s and server CPU per item (row, unique indexes, the
   generated tsvector and its GIN index).

Figures go to standard output; nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
import yaml  # noqa: E402
from sqlalchemy import event  # noqa: E402

from monitor.settings import load_settings  # noqa: E402
from monitor.store.engine import create_schema, make_engine  # noqa: E402
from monitor.store.feeds import claim_due_feeds  # noqa: E402
from monitor.store.polls import PollRecord, record_poll  # noqa: E402
from monitor.worker.daemon import run_once  # noqa: E402


@dataclass
class Counter:
    statements: int = 0
    texts: dict[str, int] = field(default_factory=dict)  # statement (its start) -> how often


COUNTER = Counter()
_LOCK = threading.Lock()


@event.listens_for(sa.Engine, "after_cursor_execute")
def _count(conn, cursor, statement, parameters, context, executemany):
    text = " ".join(statement.split())[:120]
    with _LOCK:
        COUNTER.statements += 1
        COUNTER.texts[text] = COUNTER.texts.get(text, 0) + 1


# -- the loopback sites, in their own process ---------------------------------------------

def _serve(pipe, feeds: int, entries: int) -> None:
    from tests.conftest import FIXTURES, SEEDS
    from tests.httpserver import LoopbackServer, Reply
    from tests.sites import HTML, RSS, rss, seed_article, seed_page

    pages = sorted((FIXTURES / "articles").glob("*.html"))
    servers = [LoopbackServer(f"127.0.0.{50 + n}") for n in range(8)]
    items: dict[int, list[dict]] = {}
    counter = [0]

    def add(index: int) -> None:
        server = servers[index % len(servers)]
        n = counter[0]
        counter[0] += 1
        path = f"/a/{index}/{n}.html"
        if n % 5 == 0:
            title, paragraphs = seed_article(SEEDS[n % len(SEEDS)])
            title = f"{title} ({n})"
            body = seed_page(title, [f"Dépêche {n}."] + paragraphs)
        else:
            title, body = f"News {n}", pages[n % len(pages)].read_bytes()
        server.route(path, Reply(body, content_type=HTML))
        items.setdefault(index, []).insert(0, {"title": title, "link": server.url(path),
                                               "guid": f"{index}-{n}", "summary": title})
        del items[index][entries:]

    def publish(index: int) -> None:
        server = servers[index % len(servers)]
        server.route(f"/feed/{index}.xml", Reply(rss(items[index], link=server.url("/")),
                                                 content_type=RSS, conditional=True))

    for index in range(feeds):
        for _ in range(entries):
            add(index)
        publish(index)
    pipe.send([servers[i % len(servers)].url(f"/feed/{i}.xml") for i in range(feeds)])
    while (message := pipe.recv()) != "stop":
        if message == "one more entry each":
            for index in range(feeds):
                add(index)
                publish(index)
        pipe.send("done")
    for server in servers:
        server.close()


def _settings(folder: Path, database_url: str, feed_urls: list[str], threads: int):
    (folder / "config").mkdir(parents=True)
    (folder / "storage" / "corpus").mkdir(parents=True)
    for seed in sorted((ROOT / "storage" / "corpus").glob("00[0-4]_*.txt")):
        (folder / "storage" / "corpus" / seed.name).write_bytes(seed.read_bytes())
    (folder / "config" / "rules.yaml").write_bytes((ROOT / "config" / "rules.yaml").read_bytes())
    (folder / "config" / "feeds.yaml").write_text(yaml.safe_dump(
        {"feeds": [{"url": u, "name": f"feed {i}"} for i, u in enumerate(feed_urls)]}))
    (folder / "config" / "monitor.yaml").write_text(yaml.safe_dump({
        "storage_dir": "../storage", "database_url": database_url, "log_level": "warning",
        "http": {"allow_private_networks": True, "per_host_delay": 0,
                 "per_host_connections": 8},
        "schedule": {"workers": threads},
    }))
    return load_settings(folder / "config" / "monitor.yaml", environ={})


def one_worker(label: str, database_url: str, args, pipe, feed_urls: list[str]) -> None:
    import logging

    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), database_url, feed_urls, args.threads)
        from monitor.rules import load_ruleset
        from monitor.worker.initdb import initialise

        initialise(settings, make_engine(database_url), load_ruleset(settings.rules_file))
        print(f"\n== one worker, {label}: {args.feeds} feeds x {args.entries} entries, "
              f"{args.threads} feeds at once")
        print(f"{'cycle':<8}{'wall s':>8}{'polls/s':>9}{'items/s':>9}{'cpu ms/poll':>12}"
              f"{'cpu ms/item':>12}{'stmts/poll':>11}{'stmts/item':>11}")
        for cycle in ("cold", "steady", "quiet"):
            if cycle == "steady":
                pipe.send("one more entry each")
                pipe.recv()
            COUNTER.statements = 0
            wall, cpu = time.perf_counter(), time.process_time()
            report = run_once(settings)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            polls, new = report.feeds, report.new_items
            per_item = (f"{1000 * cpu / new:>12.1f}" if new else f"{'-':>12}")
            stmts_item = (f"{(COUNTER.statements / new):>11.1f}" if new > polls else f"{'-':>11}")
            print(f"{cycle:<8}{wall:>8.1f}{polls / wall:>9.1f}{new / wall:>9.1f}"
                  f"{1000 * cpu / polls:>12.1f}{per_item}{COUNTER.statements / polls:>11.1f}"
                  f"{stmts_item}")


def schema_url(url: str):
    base = url.partition("?")[0]
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    return f"{base}?options=-csearch_path%3D{schema}", admin, schema


def _engine_noting_backends(url: str):
    """An engine, and the list of PostgreSQL backend pids its connections get (for their CPU)."""
    engine = make_engine(url)
    backends: list[int] = []

    @event.listens_for(engine, "connect")
    def _backend(dbapi_connection, _record) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backends.append(cursor.fetchone()[0])

    return engine, backends


def _claim_and_record(url: str, worker: int, threads: int, seconds: float):
    """One client process: `threads` threads claiming 4 feeds and recording each poll."""
    engine, backends = _engine_noting_backends(url)

    done, claims = [0], []
    cpu = time.process_time()
    stop = time.perf_counter() + seconds

    def work(n: int) -> None:
        owner = f"bench:{worker}-{n}:x"
        while time.perf_counter() < stop:
            now = datetime.now(UTC)
            started = time.perf_counter()
            feeds = claim_due_feeds(engine, owner=owner, now=now,
                                    lease_until=now + timedelta(minutes=10), limit=4)
            claims.append(time.perf_counter() - started)
            for feed in feeds:
                moment = datetime.now(UTC)
                with engine.begin() as conn:
                    record_poll(conn, PollRecord(
                        feed_id=feed.id, started_at=moment, finished_at=moment,
                        status="not-modified", http_status=304,
                        next_due=moment + timedelta(hours=1), worker=owner), error_streak=0)
                with _LOCK:
                    done[0] += 1

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return done[0], claims, time.process_time() - cpu, sum(map(_cpu_of, backends))


def _cpu_of(pid: int) -> float:
    """CPU seconds used so far by a process of this machine (a PostgreSQL backend)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_alone(url: str, rows: int, processes: int = 4, threads: int = 4) -> None:
    scoped, admin, schema = schema_url(url)
    try:
        engine = make_engine(scoped)
        create_schema(engine)
        with engine.begin() as conn:
            conn.execute(sa.text(
                "INSERT INTO feeds (url, name, tags, enabled, in_config, next_due, "
                "error_streak, created_at) SELECT 'https://site' || n || '.example/rss', "
                "'feed ' || n, '[]', true, true, now() - (n || ' seconds')::interval, 0, now() "
                "FROM generate_series(1, :rows) AS n"), {"rows": rows})
            conn.execute(sa.text("ANALYZE feeds"))
        seconds = 10.0
        context = multiprocessing.get_context("spawn")
        with context.Pool(processes) as pool:
            results = pool.starmap(_claim_and_record,
                                   [(scoped, n, threads, seconds) for n in range(processes)])
        polls = sum(r[0] for r in results)
        claims = [c for r in results for c in r[1]]
        client_cpu = sum(r[2] for r in results)
        server_cpu = sum(r[3] for r in results)
        with engine.connect() as conn:
            size = conn.execute(sa.text("SELECT pg_total_relation_size('polls')")).scalar()
            count = conn.execute(sa.text("SELECT count(*) FROM polls")).scalar()
        print(f"feeds table of {rows:>9,} rows: {polls / seconds:>6.0f} polls/s recorded by "
              f"{processes} processes x {threads} threads (claim 4, then one transaction per "
              f"poll); claim median {1000 * statistics.median(claims):.1f} ms; CPU per poll: "
              f"server backends {1000 * server_cpu / polls:.2f} ms, client "
              f"{1000 * client_cpu / polls:.2f} ms; {size / count:.0f} bytes per poll row "
              "(with its indexes)")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def _insert_items(url: str, worker: int, count: int):
    """One client process: `count` items of seed-sized texts, each in its own transaction."""
    from monitor.store.items import NewItem, insert_item

    engine, backends = _engine_noting_backends(url)

    seeds = [p.read_text(encoding="utf-8") for p in
             sorted((ROOT / "storage" / "corpus").glob("00[0-4]_*.txt"))]
    cpu, now = time.process_time(), datetime.now(UTC)
    for n in range(count):
        url = f"https://site.example/{worker}/{n}"
        insert_item(engine, NewItem(
            feed_id=None, guid=None, url=url, canonical_url=url, title=f"Titre {n}",
            summary="", published=None, fetched_at=now, lang="fr", text=seeds[n % len(seeds)],
            text_source="page", text_error=None, text_error_message=None, content_hash="h",
            relevant=n % 5 == 0, score=1.0, topics=["ai"], matches=[], rules_version="r",
            corpus_file=None))
    return time.process_time() - cpu, sum(map(_cpu_of, backends))


def items_alone(url: str, count: int = 2000, processes: int = 4) -> None:
    scoped, admin, schema = schema_url(url)
    try:
        create_schema(make_engine(scoped))
        began = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            results = pool.starmap(_insert_items, [(scoped, n, count // processes)
                                                   for n in range(processes)])
        seconds = time.perf_counter() - began
        client, server = (sum(r[i] for r in results) for i in (0, 1))
        with make_engine(scoped).connect() as conn:
            size = conn.execute(sa.text("SELECT pg_total_relation_size('items')")).scalar()
        print(f"{count} items of about 4 KB, one transaction each, {processes} processes: "
              f"{count / seconds:.0f} items/s; CPU per item: server backends "
              f"{1000 * server / count:.2f} ms (row, indexes, tsvector + GIN), client "
              f"{1000 * client / count:.2f} ms; {size / count:.0f} bytes per item (row, "
              "TOAST, indexes)")
    finally:
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--entries", type=int, default=10)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres", default=os.environ.get(
        "MONITOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--claim-rows", type=int, nargs="*", default=[100_000, 1_000_000])
    args = parser.parse_args()
    try:
        with sa.create_engine(args.postgres).connect():
            postgres = args.postgres
    except Exception as exc:  # no server: the SQLite figures alone
        print(f"PostgreSQL not reachable at {args.postgres} ({exc.__class__.__name__}); "
              "SQLite only")
        postgres = None
    backends = [("SQLite", None)] + ([("PostgreSQL", postgres)] if postgres else [])
    for label, url in backends:
        parent, child = multiprocessing.get_context("spawn").Pipe()
        server = multiprocessing.get_context("spawn").Process(
            target=_serve, args=(child, args.feeds, args.entries), daemon=True)
        server.start()
        feed_urls = parent.recv()
        try:
            if url is None:
                with tempfile.TemporaryDirectory() as tmp:
                    one_worker(label, f"sqlite:///{tmp}/bench.db", args, parent, feed_urls)
            else:
                scoped, admin, schema = schema_url(url)
                try:
                    one_worker(label, scoped, args, parent, feed_urls)
                finally:
                    with admin.begin() as conn:
                        conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                    admin.dispose()
        finally:
            parent.send("stop")
            server.join(timeout=10)
    if postgres:
        print("\n== the database alone (PostgreSQL): claim + record, no HTTP")
        for rows in args.claim_rows:
            database_alone(postgres, rows)
        items_alone(postgres)


if __name__ == "__main__":
    main()
