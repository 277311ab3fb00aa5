"""Polling at scale when nothing changed: monitor against bare HTTP clients, and its memory.

    python bench/steady_state.py [--feeds 2000] [--hosts 50] [--workers 64]
                                 [--memory-feeds 10000] [--no-reader] [--rounds 3]

nginx (bench/nginx.py; install it with ``apt-get install -y nginx``) serves FEEDS small RSS
feeds spread over HOSTS loopback addresses 127.0.1.1..127.0.1.HOSTS, each feed with 0, 1 or 2
entries whose links point at a small article page on the same host.

1. monitor, through its command line (``python -m monitor run --once`` in a subprocess, on a
   temporary project: config/ copied from the project's, a temporary SQLite database;
   per_host_delay 0, schedule.workers WORKERS, per_host_connections 8, max_connections
   WORKERS). Cycle 1 fetches every feed (200), stores the entries and the validators nginx
   sent. Cycle 2, measured: every feed answers 304 Not Modified. Figures: feeds/s by the cycle
   time monitor prints (the headline: from loading the feeds to the last poll recorded), by
   the span of its polls in the database (first start to last end, to the millisecond, where
   the printed figure has 0.1 s steps) and by the process's wall time (Python start-up and
   database set-up included). Cycle 1 must have recorded FEEDS ``ok`` polls and stored every
   entry, and cycle 2 FEEDS ``not-modified`` polls, or the bench fails; so does a run that
   has not exited after 10 minutes (it is killed).
2. Baselines, in this process, on the same URLs with the validators monitor stored: a bare
   aiohttp loop (one ClientSession, TCPConnector(limit=c), conditional GETs, body read) and a
   bare httpx AsyncClient (max_connections=c), each at c = 8, 16, 32, 64, best kept; every
   answer must be a 304. Ratio = bare aiohttp requests/s / monitor feeds/s by the printed
   cycle time (target <= 2.0), in ROUNDS rounds of a 304 cycle followed by the bare aiohttp
   loop (the machine's speed drifts within a sitting: a round's two figures are neighbours);
   the headline is the median round's, every round's ratio printed beside it. The bare loop
   runs on asyncio's own event loop, as plain aiohttp does; monitor runs its polls on uvloop
   (`monitor/worker/eventloop.py`), so the same bare loop on uvloop is measured once and its
   ratio printed beside, with the ratio by the database span and the httpx one (measured
   once).
   Then lemon24/reader (`reader_baseline.py`; --no-reader skips it): its own update cycle on
   the same URLs, a reader database of its own, one update to fetch them, then one all-304
   update timed per ``workers=`` setting, best kept. Ratio = monitor feeds/s / reader feeds/s
   (target >= 4.0).
3. Memory: a fresh project with MEMORY_FEEDS feeds (0 skips it) over the same hosts, cycle 1
   then the 304 cycle; the peak resident memory of the `monitor run --once` process and of
   its children (extraction processes), sampled from /proc every 20 ms, apart and summed
   (target: summed peak of the 304 cycle <= 200 MB); wait4's ru_maxrss as a cross-check.

Figures go to standard output; nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

import aiohttp
import httpx
import uvloop
from monitor_once import MB, OnceRun, connect_database, make_project, print_rows, run_once
from nginx import StaticSite, loopback_addresses, nginx_binary, serve_static
from reader_baseline import ReaderBaseline, measure_reader

CONCURRENCIES = (8, 16, 32, 64)
RATIO_TARGET = 2.0
READER_TARGET = 4.0
MEMORY_TARGET_MB = 200
# Page texts are drawn phrase by phrase from these slots, seeded by the page, so that no two
# pages are near-duplicates: monitor groups copies of one story, and thousands of copies would
# make cycle 1 measure that grouping rather than polling.
_SLOTS = (
    ("Le conseil", "La mairie", "Le club", "L'association", "La préfecture", "Le syndicat",
     "La chambre", "Le comité", "La direction", "Le collectif", "L'office", "La société"),
    ("agricole", "portuaire", "scolaire", "touristique", "sanitaire", "civique", "économique",
     "artistique", "nautique", "universitaire", "solidaire", "ferroviaire"),
    ("a annoncé", "prévoit", "a présenté", "examine", "a voté", "prépare", "conteste",
     "finance", "a reporté", "soutient", "organise", "a lancé"),
    ("un projet", "le budget", "un chantier", "la rénovation", "un festival", "un marché",
     "la fermeture", "une étude", "un concours", "la réouverture", "un plan", "une collecte"),
    ("du stade", "de la gare", "du port", "des écoles", "du musée", "de la piscine",
     "du quartier nord", "des halles", "de la bibliothèque", "du pont", "des jardins",
     "du théâtre"),
    ("pour mardi", "avant l'été", "dès lundi", "en septembre", "pour la rentrée",
     "cette semaine", "fin mars", "d'ici deux ans", "au printemps", "jeudi soir", "à l'automne",
     "en décembre"),
    ("avec {n} participants attendus", "pour un coût de {n}000 euros", "selon {n} habitants",
     "après {n} jours de débat", "devant {n} personnes", "sur {n} mètres",
     "à {n} kilomètres du centre", "malgré {n} avis contraires"),
)


@dataclass(frozen=True)
class ServedFeed:
    url: str
    name: str
    entries: int


@dataclass(frozen=True)
class Cycle:
    run: OnceRun
    poll_span: float  # seconds from the first poll's start to the last poll's end (database)
    last_poll_id: int


@dataclass(frozen=True)
class Baseline:
    client: str
    best_per_second: float
    best_concurrency: int
    per_concurrency: dict[int, float]


# -- the sites --------------------------------------------------------------------------------

def publish_feeds(root: Path, site: StaticSite, count: int,
                  entries_of: Callable[[int], int] = lambda n: n % 3) -> list[ServedFeed]:
    """``count`` feeds, feed n on host n mod H with ``entries_of(n)`` entries (default n mod 3),
    and their pages."""
    feeds, hosts = [], site.addresses
    published = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    for n in range(count):
        host = hosts[n % len(hosts)]
        items = []
        for k in range(entries_of(n)):
            title = f"Chronique locale {n}-{k} : la semaine en bref"
            page = f"news/{n}-{k}.html"
            (root / host / page).parent.mkdir(exist_ok=True)
            sentences = _sentences(f"{n}-{k}", 12)
            (root / host / page).write_text(_page(title, sentences), encoding="utf-8")
            items.append(
                f"<item><title>{escape(title)}</title><link>{site.url(host, page)}</link>"
                f'<guid isPermaLink="false">site-{host}-{n}-{k}</guid>'
                f"<pubDate>{format_datetime(published - timedelta(minutes=n + k))}</pubDate>"
                f"<description>{escape(sentences[0])}</description>"
                "</item>")
        path = f"feeds/{n}.xml"
        (root / host / path).parent.mkdir(exist_ok=True)
        (root / host / path).write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>Site {host}, rubrique {n}</title><link>{site.url(host, '/')}</link>"
            "<description>Les nouvelles de la ville</description><language>fr</language>"
            f"{''.join(items)}</channel></rss>\n", encoding="utf-8")
        feeds.append(ServedFeed(site.url(host, path), f"site {host} feed {n}", len(items)))
    for host in hosts:
        (root / host / "robots.txt").write_text("User-agent: *\nAllow: /\n")
    return feeds


def _sentences(seed: str, count: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(slot) for slot in _SLOTS).format(n=rng.randint(2, 999)) + "."
            for _ in range(count)]


def _page(title: str, sentences: Sequence[str]) -> str:
    paragraphs = "".join(f"<p>{escape(' '.join(sentences[i:i + 3]))}</p>"
                         for i in range(0, len(sentences), 3))
    return ("<!DOCTYPE html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head><body><header><nav><a href=\"/\">Accueil</a>"
            f"</nav></header><main><article><h1>{escape(title)}</h1>{paragraphs}</article>"
            "</main><footer>Tous droits réservés.</footer></body></html>\n")


# -- monitor ----------------------------------------------------------------------------------

def project(folder: Path, feeds: Sequence[ServedFeed], workers: int) -> Path:
    return make_project(folder, [(f.url, f.name) for f in feeds], {
        "http": {"allow_private_networks": True, "per_host_delay": 0,
                 "per_host_connections": 8, "max_connections": workers},
        "schedule": {"workers": workers},
    })


def two_cycles(config: Path, feeds: Sequence[ServedFeed]) -> tuple[Cycle, Cycle]:
    """Cycle 1 (all 200) then cycle 2 (all 304), each checked in the database."""
    first = checked_cycle(config, 0, len(feeds), "ok", "cycle 1")
    with connect_database(config) as db:
        items = db.execute("SELECT count(*) FROM items WHERE feed_id IS NOT NULL").fetchone()[0]
    expected = sum(f.entries for f in feeds)
    if items != expected:
        raise SystemExit(f"cycle 1 stored {items} items from the feeds, not {expected}: every "
                         f"entry's page is served; see {config.parent.parent / 'once.err'}")
    second = checked_cycle(config, first.last_poll_id, len(feeds), "not-modified", "cycle 2")
    return first, second


def checked_cycle(config: Path, after: int, feeds: int, status: str, cycle: str) -> Cycle:
    """`monitor run --once`; SystemExit unless it recorded ``feeds`` polls of ``status``."""
    run = run_once(config)
    with connect_database(config) as db:
        statuses = Counter(dict(db.execute(
            "SELECT status, count(*) FROM polls WHERE id > ? GROUP BY status", (after,))))
        errors = db.execute("SELECT error_reason, error_message FROM polls WHERE id > ? AND "
                            "status = 'error' LIMIT 3", (after,)).fetchall()
        first, last, last_id = db.execute(
            "SELECT min(started_at), max(finished_at), max(id) FROM polls WHERE id > ?",
            (after,)).fetchone()
    if statuses != Counter({status: feeds}):
        raise SystemExit(f"{cycle}: expected {feeds} polls with status {status!r}, the database "
                         f"has {dict(statuses)}; first errors: {errors}")
    span = (datetime.fromisoformat(last) - datetime.fromisoformat(first)).total_seconds()
    return Cycle(run, span, last_id)


def validators(config: Path) -> list[tuple[str, dict[str, str]]]:
    with connect_database(config) as db:
        rows = db.execute("SELECT url, etag, last_modified FROM feeds ORDER BY id").fetchall()
    missing = [url for url, etag, modified in rows if not (etag or modified)]
    if missing:
        raise SystemExit(f"{len(missing)} feeds have no validator stored after cycle 1, e.g. "
                         f"{missing[0]}: nginx sends ETag and Last-Modified for static files")
    return [(url, {k: v for k, v in (("If-None-Match", etag), ("If-Modified-Since", modified))
                   if v}) for url, etag, modified in rows]


# -- the baselines ----------------------------------------------------------------------------

async def _aiohttp_pass(requests: Sequence[tuple[str, dict]], concurrency: int) -> Counter:
    statuses: Counter[int] = Counter()
    pending = iter(requests)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for url, headers in pending:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    statuses[response.status] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


async def _httpx_pass(requests: Sequence[tuple[str, dict]], concurrency: int) -> Counter:
    statuses: Counter[int] = Counter()
    pending = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # trust_env=False: no proxy from the environment; every request stays on loopback.
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def worker() -> None:
            for url, headers in pending:
                response = await client.get(url, headers=headers)  # reads the body
                statuses[response.status_code] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def baseline(client: str, one_pass: Callable, requests: Sequence[tuple[str, dict]],
             loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None) -> Baseline:
    rates = {}
    for concurrency in CONCURRENCIES:
        started = time.perf_counter()
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            statuses = runner.run(one_pass(requests, concurrency))
        rates[concurrency] = len(requests) / (time.perf_counter() - started)
        if statuses != Counter({304: len(requests)}):
            raise SystemExit(f"bare {client} at concurrency {concurrency}: expected "
                             f"{len(requests)} answers 304, got {dict(statuses)}")
    best = max(rates, key=rates.__getitem__)
    return Baseline(client, rates[best], best, rates)


# -- the report -------------------------------------------------------------------------------

def _rate(count: int, seconds: float | None) -> str:
    return f"{count / seconds:,.0f}" if seconds else "-"


def _verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _cycle_line(label: str, cycle: Cycle, feeds: int) -> str:
    run = cycle.run
    printed = (f"{run.reported_seconds:.2f} s ({_rate(feeds, run.reported_seconds)} feeds/s)"
               if run.reported_seconds else "no summary line")
    return (f"  {label}: printed {printed}; polls recorded over {cycle.poll_span:.2f} s "
            f"({_rate(feeds, cycle.poll_span)} feeds/s); wall {run.wall_seconds:.1f} s "
            f"({_rate(feeds, run.wall_seconds)} feeds/s)")


def _memory_line(label: str, cycle: Cycle) -> str:
    m = cycle.run.memory
    return (f"  {label} peak RSS: parent {m.parent / MB:.0f} MB, children {m.children / MB:.0f} "
            f"MB ({m.children_seen} processes), summed {m.total / MB:.0f} MB; wait4 ru_maxrss "
            f"{m.kernel_peak / MB:.0f} MB")


def measure(args: argparse.Namespace, tmp: Path) -> tuple[
        list[tuple[Cycle, Baseline]], list[Baseline], ReaderBaseline | None, Cycle | None]:
    """Cycles 1 and 2 on FEEDS feeds, the baselines, then the memory run: the rounds (a 304
    cycle, the bare aiohttp loop), the bare loops beside (httpx, aiohttp on uvloop), reader's
    (None when skipped) and the memory run's cycle 2 (None when skipped)."""
    hosts = loopback_addresses("127.0.1.0/24", args.hosts)
    with serve_static(tmp / "www", hosts) as site:
        served = publish_feeds(tmp / "www", site, max(args.feeds, args.memory_feeds))
        feeds = served[:args.feeds]
        print(f"nginx (1 worker process) on {len(hosts)} loopback hosts, port {site.port}; "
              f"{len(feeds)} feeds, {sum(f.entries for f in feeds)} entries; monitor with "
              f"schedule.workers {args.workers}")
        config = project(tmp / "steady", feeds, args.workers)
        cycles = two_cycles(config, feeds)
        for label, cycle in zip(("cycle 1 (200)", "cycle 2 (304)"), cycles, strict=True):
            print(_cycle_line(label, cycle, len(feeds)))
        requests = validators(config)
        # Rounds of a 304 cycle then the bare loop, each ratio of one round: the machine's
        # speed drifts between sittings and within one, and a ratio of neighbours follows it.
        rounds = [(cycles[1], baseline("aiohttp", _aiohttp_pass, requests))]
        while len(rounds) < args.rounds:
            again = checked_cycle(config, rounds[-1][0].last_poll_id, len(feeds),
                                  "not-modified", f"304 cycle of round {len(rounds) + 1}")
            print(_cycle_line(f"304 cycle of round {len(rounds) + 1}", again, len(feeds)))
            rounds.append((again, baseline("aiohttp", _aiohttp_pass, requests)))
        # Beside: bare httpx, and bare aiohttp on the event loop monitor runs on (uvloop).
        beside = [baseline("httpx", _httpx_pass, requests),
                  baseline("aiohttp (uvloop)", _aiohttp_pass, requests, uvloop.new_event_loop)]
        bare = [b for _, b in rounds] + beside
        for b in bare:
            rates = ", ".join(f"c={c}: {r:,.0f}" for c, r in b.per_concurrency.items())
            print(f"  bare {b.client}, {len(requests)} conditional GETs (304): {rates} req/s")
        reader = None
        if args.reader:
            reader = measure_reader(tmp / "reader", [f.url for f in feeds])
            rates = ", ".join(f"workers={w}: {r:,.0f}" for w, r in reader.per_workers.items())
            print(f"  reader update_feeds(), {len(feeds)} feeds (304): {rates} feeds/s")
        if not args.memory_feeds:
            return rounds, beside, reader, None
        print(f"memory run: {args.memory_feeds} feeds")
        big = served[:args.memory_feeds]
        memory = two_cycles(project(tmp / "memory", big, args.workers), big)
        for label, cycle in zip(("cycle 1 (200)", "cycle 2 (304)"), memory, strict=True):
            print(_cycle_line(label, cycle, len(big)))
            print(_memory_line(label, cycle))
        return rounds, beside, reader, memory[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--workers", type=int, default=64, help="schedule.workers for monitor")
    parser.add_argument("--memory-feeds", type=int, default=10_000, help="0: no memory run")
    parser.add_argument("--no-reader", dest="reader", action="store_false",
                        help="skip the lemon24/reader baseline")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of a 304 cycle then the bare aiohttp loop")
    args = parser.parse_args()
    if (not 1 <= args.hosts <= 254 or args.feeds < 1 or args.memory_feeds < 0
            or args.rounds < 1):
        parser.error("--hosts must be 1..254 (127.0.1.1..127.0.1.254), --feeds at least 1, "
                     "--memory-feeds 0 or more, --rounds at least 1")
    nginx_binary()  # says how to install nginx when it is missing
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-steady-") as folder:
        rounds, beside, reader, memory = measure(args, Path(folder))

    def ratio_of(round_: tuple[Cycle, Baseline]) -> float:
        cycle, bare_round = round_
        return bare_round.best_per_second * (cycle.run.reported_seconds
                                             or cycle.run.wall_seconds) / args.feeds

    ratios = [ratio_of(round_) for round_ in rounds]
    cycle, aiohttp_bare = sorted(rounds, key=ratio_of)[len(rounds) // 2]  # the median round
    bare = [aiohttp_bare, *beside]
    headline = cycle.run.reported_seconds or cycle.run.wall_seconds
    monitor_rate = args.feeds / headline
    ratio = bare[0].best_per_second / monitor_rate
    print(f"\n== steady state: {args.feeds} feeds on {args.hosts} hosts, all 304 "
          f"(whole bench {time.perf_counter() - began:.0f} s)")
    rows = [
        ("monitor, cycle time it prints (headline)", f"{monitor_rate:,.0f} feeds/s", "", ""),
        ("monitor, first poll start to last poll end (database)",
         f"{_rate(args.feeds, cycle.poll_span)} feeds/s", "", ""),
        ("monitor, process wall time (with Python start-up)",
         f"{_rate(args.feeds, cycle.run.wall_seconds)} feeds/s", "", ""),
        *((f"bare {b.client} loop, best (c={b.best_concurrency})",
           f"{b.best_per_second:,.0f} req/s", "", "") for b in bare),
        (f"ratio bare aiohttp / monitor, median round (rounds: "
         f"{', '.join(f'{r:.2f}' for r in ratios)})", f"{ratio:.2f}", f"<= {RATIO_TARGET}",
         _verdict(ratio <= RATIO_TARGET)),
        ("ratio bare aiohttp / monitor by the database span (beside)",
         f"{bare[0].best_per_second * cycle.poll_span / args.feeds:.2f}", "", ""),
        ("ratio bare httpx / monitor (beside)", f"{bare[1].best_per_second / monitor_rate:.2f}",
         "", ""),
        ("ratio bare aiohttp (uvloop) / monitor (beside)",
         f"{bare[2].best_per_second / monitor_rate:.2f}", "", ""),
    ]
    if reader:
        speedup = monitor_rate / reader.best_per_second
        rows += [(f"reader update_feeds(), best (workers={reader.best_workers})",
                  f"{reader.best_per_second:,.0f} feeds/s", "", ""),
                 ("ratio monitor / reader", f"{speedup:.2f}", f">= {READER_TARGET}",
                  _verdict(speedup >= READER_TARGET))]
    if memory:
        total = memory.run.memory.total / MB
        rows.append((f"peak RSS, 304 cycle at {args.memory_feeds:,} feeds, parent+children",
                     f"{total:,.0f} MB", f"<= {MEMORY_TARGET_MB} MB",
                     _verdict(total <= MEMORY_TARGET_MB)))
    print_rows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
