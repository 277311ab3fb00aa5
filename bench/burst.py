"""A burst of new articles: monitor end to end against bare single-process trafilatura.

    python bench/burst.py [ARTICLES_DIR] [--workers 32] [--per-host-connections 8]
                          [--extract-processes 0]

ARTICLES_DIR (default tests/fixtures/articles) holds ``<id>.html`` + ``<id>.json`` (gold) and
``INDEX.jsonl``, as bench/extract_quality.py reads them. nginx (bench/nginx.py; install it with
``apt-get install -y nginx``) serves every page, bytes unchanged, as text/html with no charset
parameter (pages declare their own), spread over 12 loopback hosts 127.0.2.1..127.0.2.12, and on
each host one RSS feed listing that host's pages: every page is new at once.

1. monitor, through its command line (``python -m monitor run --once`` in a subprocess, on a
   temporary project: config/ copied from the project's, a temporary SQLite database;
   per_host_delay 0, per_host_connections 8, schedule.workers 32, extract_processes 0 = one
   per core, or as --extract-processes says). End to end: articles/s = stored items / the
   cycle time monitor prints (the process's wall time, Python start-up included, beside).
   Every page must have become an item (or the bench fails); the count with text_source =
   page is reported.
2. Baseline, in this process, one page after the other over the same pages read from disk:
   ``trafilatura.extract(html_bytes)`` with its defaults (bench/extract_quality.py's ``bare``;
   one warm-up call not counted). Ratio = monitor seconds / bare seconds (target <= 0.65:
   with one extraction process per core, 2 cores nearly halve the time of one; 0.5 is the
   limit there, extraction being the whole cost).
3. Quality on the pages with a full-text gold: token F1 (bench/extract_quality.py's scoring)
   of the texts monitor stored (items.text, matched to pages by URL; none counts as "") and
   of bare trafilatura's output (target: monitor no more than 0.01 below bare).
4. Where the time goes, as sampled from /proc: the extraction pool's utilisation (the CPU
   seconds of its processes over cycle time x their number), and the CPU seconds of the monitor
   process itself (event loop, database threads, Python start-up and set-up) and of the pool,
   beside bare trafilatura's (its one warm-up page included). On 2 cores the cycle cannot take
   less than the CPU it needs over 2; these figures move less than wall times on a busy machine.

Figures go to standard output; nothing is written outside the temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

from extract_quality import DEFAULT_DIR, Page, bare, load_pages, score, timed
from monitor_once import OnceRun, connect_database, make_project, print_rows, run_once
from nginx import StaticSite, loopback_addresses, nginx_binary, serve_static

HOSTS = 12
RATIO_TARGET = 0.65
F1_TOLERANCE = 0.01


def publish(root: Path, site: StaticSite, pages: Sequence[Page]) -> tuple[list[str], dict]:
    """Page i on host i mod 12 and in that host's feed. Returns the feed URLs and
    {page URL: page}."""
    by_url, listed = {}, {host: [] for host in site.addresses}
    for n, page in enumerate(pages):
        host = site.addresses[n % len(site.addresses)]
        path = f"articles/{page.id}.html"
        (root / host / path).parent.mkdir(exist_ok=True)
        (root / host / path).write_bytes(page.html)
        url = site.url(host, path)
        by_url[url] = page
        listed[host].append(f"<item><title>Article {escape(page.id)}</title><link>{url}</link>"
                            f"<guid>{url}</guid></item>")
    for host, items in listed.items():
        (root / host / "robots.txt").write_text("User-agent: *\nAllow: /\n")
        (root / host / "news.xml").write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
            f"<title>News of {host}</title><link>{site.url(host, '/')}</link>"
            f"<description>Every article of {host}</description>{''.join(items)}"
            "</channel></rss>\n", encoding="utf-8")
    return [site.url(host, "news.xml") for host in site.addresses], by_url


def stored_texts(config: Path, by_url: dict[str, Page]) -> tuple[dict[str, str], Counter]:
    """{page id: stored text} and the count of each text_source; SystemExit if a page is
    missing."""
    with connect_database(config) as db:
        rows = db.execute("SELECT url, text, text_source FROM items "
                          "WHERE feed_id IS NOT NULL").fetchall()
    texts = {by_url[url].id: text for url, text, _ in rows if url in by_url}
    missing = sorted(page.id for page in by_url.values() if page.id not in texts)
    if missing:
        raise SystemExit(f"{len(missing)} of {len(by_url)} pages did not become items, e.g. "
                         f"{missing[:5]}; see {config.parent.parent / 'once.err'}")
    return texts, Counter(source for url, _, source in rows if url in by_url)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("articles", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--workers", type=int, default=32, help="schedule.workers for monitor")
    parser.add_argument("--per-host-connections", type=int, default=8)
    parser.add_argument("--extract-processes", type=int, default=0,
                        help="schedule.extract_processes for monitor (0: one per core)")
    args = parser.parse_args()
    nginx_binary()  # says how to install nginx when it is missing
    began = time.perf_counter()
    pages = load_pages(args.articles)
    if not pages:
        raise SystemExit(f"no pages listed in {args.articles / 'INDEX.jsonl'}")
    with tempfile.TemporaryDirectory(prefix="bench-burst-") as folder:
        tmp = Path(folder)
        with serve_static(tmp / "www", loopback_addresses("127.0.2.0/24", HOSTS)) as site:
            feed_urls, by_url = publish(tmp / "www", site, pages)
            config = make_project(tmp / "project", [(u, f"news {u}") for u in feed_urls], {
                "http": {"allow_private_networks": True, "per_host_delay": 0,
                         "per_host_connections": args.per_host_connections,
                         "max_connections": max(args.workers,
                                                HOSTS * args.per_host_connections)},
                "schedule": {"workers": args.workers,
                             "extract_processes": args.extract_processes},
            })
            run: OnceRun = run_once(config)
            texts, sources = stored_texts(config, by_url)
    bare_cpu = time.process_time()
    bare_texts, bare_speed = timed(bare, pages)
    bare_cpu = time.process_time() - bare_cpu
    bare_seconds = len(pages) / bare_speed
    monitor_seconds = run.reported_seconds or run.wall_seconds

    full = [(i, p) for i, p in enumerate(pages)
            if str(p.gold.get("gold_type", "")).startswith("full_text")]
    golds = [p.gold["articleBody"] for _, p in full]
    ours = score(golds, [texts[p.id] for _, p in full])
    theirs = score(golds, [bare_texts[i] for i, _ in full])
    ratio = monitor_seconds / bare_seconds
    cpu = run.cpu
    utilisation = cpu.pool / (monitor_seconds * cpu.pool_processes) if cpu.pool_processes else 0.0
    difference = ours.token_f1 - theirs.token_f1

    print(f"\n== burst: {len(pages)} new pages from {args.articles.name}/ in {HOSTS} feeds on "
          f"{HOSTS} hosts (whole bench {time.perf_counter() - began:.0f} s)")
    print(f"stored text sources: {dict(sources)}; monitor printed: "
          f"{run.output.strip().splitlines()[-1] if run.output.strip() else '(nothing)'}")
    print_rows([
        ("monitor end to end, cycle time it prints (headline)",
         f"{len(texts) / monitor_seconds:.1f} articles/s", "", ""),
        ("monitor end to end, wall time (with start-up)",
         f"{len(texts) / run.wall_seconds:.1f} articles/s", "", ""),
        ("bare trafilatura, one process", f"{bare_speed:.1f} pages/s", "", ""),
        ("ratio monitor s / bare s", f"{monitor_seconds:.1f}/{bare_seconds:.1f} = {ratio:.2f}",
         f"<= {RATIO_TARGET}", "PASS" if ratio <= RATIO_TARGET else "FAIL"),
        (f"pool utilisation: CPU s / (cycle s x {cpu.pool_processes} processes)",
         f"{cpu.pool:.1f}/{monitor_seconds * cpu.pool_processes:.1f} = {utilisation:.0%}", "", ""),
        ("CPU s: monitor process (start-up included) + pool",
         f"{cpu.parent:.1f} + {cpu.pool:.1f}", "", ""),
        ("CPU s: bare trafilatura", f"{bare_cpu:.1f}", "", ""),
        ("pages stored with text_source = page", f"{sources['page']}/{len(pages)}", "", ""),
        (f"token F1 monitor ({len(full)} full-text pages)", f"{ours.token_f1:.3f}", "", ""),
        ("token F1 bare trafilatura", f"{theirs.token_f1:.3f}", "", ""),
        ("token F1 monitor - bare", f"{difference:+.3f}", f">= -{F1_TOLERANCE}",
         "PASS" if difference >= -F1_TOLERANCE else "FAIL"),
    ])
    return 0


if __name__ == "__main__":
    sys.exit(main())
