"""Speed of the web inspector's items page at 100,000 items, keyset against OFFSET, in one run.

    python bench/web_speed.py [--items N] [--repeat R] [--db PATH]

1. Fills a fresh SQLite file (`--db`, default a temporary folder) with N items (default
   100,000) in batches with executemany: 40 feeds, texts of 1.5–6 KB made of real French
   seed paragraphs, English news paragraphs and Arabic sentences (70% fr, 20% ar, 10% en),
   about 12% relevant with topics and stored matches, kept over the last 365 days.
2. Starts the real app (`monitor.web.create_app`) under uvicorn on 127.0.0.1 (an ephemeral
   port) and requests, R times each after a warm-up, over loopback:
   first page (newest published first); a page 2,000 items deep (keyset cursor ``before``); a
   filtered page (relevant, topic, language); a search best match first (a word in about one
   item in five), the same newest first, a rare word and a search with filters (full-text
   index of migration 0003); one feed; best score first; newest kept first; one language; a
   date range 200 days back (publication days); and the feeds page. Every items page counts
   its total and facets (topic, language, feed) as the inspector does.
   The figure is the server's own time (its ``Server-Timing: app;dur=`` header, taken when the
   answer starts); the client's round trip is printed beside it.
3. The OFFSET baseline, in the same run: the same SELECT with ``OFFSET k`` instead of the
   keyset cursor, timed at the database (and the keyset SELECT timed the same way), at 2,000
   and 50,000 items deep, unfiltered and filtered. Prints the ratio.

The schema is the migrations' head (revision 0004 adds the indexes the feeds page and date
filters use, 0010 those of the publication and score orders). Figures go to standard output;
nothing is written outside the temporary folder (or the `--db` file).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.settings import load_settings  # noqa: E402
from monitor.store.engine import (  # noqa: E402
    create_schema,
    make_engine,
    read_engine,  # noqa: E402
)
from monitor.store.listings import newest_items_select  # noqa: E402
from monitor.store.schema import feeds, items  # noqa: E402
from monitor.web import create_app  # noqa: E402
from monitor.web.filters import ItemFilters  # noqa: E402
from tests.webdata import running  # noqa: E402  (uvicorn on loopback, the tests' own)

TOPICS = ("ai", "cyber", "data-protection", "digital-policy")
ARABIC = ("المغرب", "الذكاء", "الاصطناعي", "الأمن", "السيبراني", "الرقمي", "الحكومة", "الوزارة",
          "التحول", "البيانات", "حماية", "الشركات", "التعاون", "الاستثمار", "الرباط", "قانون",
          "المديرية", "العامة", "لأمن", "نظم", "المعلومات", "الجامعة", "التكوين", "الشباب")


def page_select(filters: ItemFilters):
    """The SELECT of one items page, as the inspector runs it (a row more than the page)."""
    return newest_items_select(filters, limit=filters.limit + 1)


def paragraphs() -> list[str]:
    """Real paragraphs: the seed corpus (French) and the article fixtures' gold texts (English)."""
    found = []
    for path in sorted((ROOT / "storage" / "corpus").glob("00[0-4]_*.txt")):
        found += [p.strip() for p in path.read_text(encoding="utf-8").split("\n") if len(p) > 80]
    for path in sorted((ROOT / "tests" / "fixtures" / "articles").glob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8")).get("articleBody") or ""
        found += [p.strip() for p in body.split("\n") if len(p) > 80]
    return found


def make_text(rng: random.Random, pool: list[str], lang: str) -> str:
    if lang == "ar":
        words = rng.choices(ARABIC, k=rng.randint(250, 1000))
        return "\n".join(" ".join(words[i:i + 40]) + "." for i in range(0, len(words), 40))
    size = rng.randint(1500, 6000)
    parts, total = [], 0
    while total < size:
        piece = rng.choice(pool)
        parts.append(piece)
        total += len(piece) + 1
    return "\n".join(parts)


def fill(db: Path, count: int, seed: int = 7) -> str:
    """A SQLite database with `count` items; returns its URL."""
    url = f"sqlite:///{db}"
    engine = make_engine(url)
    create_schema(engine)
    rng = random.Random(seed)
    pool = paragraphs()
    now = datetime.now(UTC).replace(microsecond=0)
    with engine.begin() as conn:
        conn.execute(feeds.insert(), [
            {"url": f"https://news{n}.example.ma/rss", "name": f"Outlet {n}",
             "lang": ("fr", "ar", "en")[n % 3], "tags": [], "enabled": True, "in_config": True,
             "next_due": now, "created_at": now - timedelta(days=365), "error_streak": n % 7 == 0,
             "last_status": "timeout" if n % 7 == 0 else "ok", "last_polled_at": now}
            for n in range(1, 41)])
    start = time.perf_counter()
    batch = []
    for n in range(1, count + 1):
        lang = rng.choices(("fr", "ar", "en"), (70, 20, 10))[0]
        body = make_text(rng, pool, lang)
        relevant = rng.random() < 0.12
        topics = sorted(rng.sample(TOPICS, rng.randint(1, 2))) if relevant else []
        matches = [{"term": "maroc", "group": "morocco", "field": "body", "start": i * 40,
                    "end": i * 40 + 5, "rules": ["morocco-ai"]}
                   for i in range(rng.randint(0, 12))]
        fetched = now - timedelta(seconds=int((count - n) * 365 * 86400 / count))
        batch.append({
            "feed_id": rng.randint(1, 40), "guid": f"g{n}", "url": f"https://example.ma/a/{n}",
            "canonical_url": f"https://example.ma/a/{n}",
            "title": f"{body[:70].splitlines()[0]} ({n})", "summary": body[:200],
            "published": fetched - timedelta(hours=rng.randint(0, 48)), "fetched_at": fetched,
            "lang": lang, "text": body, "text_source": "page", "text_error": None,
            "text_error_message": None, "content_hash": f"{rng.getrandbits(128):032x}",
            "relevant": relevant, "score": 4.0 if relevant else rng.choice((0.0, 1.0)),
            "topics": topics, "matches": matches, "rules_version": "bench",
            "corpus_file": f"{n:06d}_bench.txt" if relevant else None,
        })
        if len(batch) == 5000:
            with engine.begin() as conn:
                conn.execute(items.insert(), batch)
            batch = []
    if batch:
        with engine.begin() as conn:
            conn.execute(items.insert(), batch)
    with engine.begin() as conn:
        # a rare word, in 20 items spread over the table
        for n in range(1, count + 1, max(count // 20, 1)):
            conn.execute(text("UPDATE items SET text = text || ' zygomorphique' WHERE id = :n"),
                         {"n": n})
    engine.dispose()
    print(f"filled {count} items in {time.perf_counter() - start:.1f}s "
          f"({db.stat().st_size / 2**20:.0f} MiB)")
    return url


def project(folder: Path, url: str):
    config = folder / "config"
    config.mkdir(exist_ok=True)
    (config / "rules.yaml").write_text((ROOT / "config" / "rules.yaml").read_text("utf-8"),
                                       encoding="utf-8")
    (config / "feeds.yaml").write_text("feeds: []\n", encoding="utf-8")
    (config / "monitor.yaml").write_text(f"database_url: '{url}'\nstorage_dir: ../storage\n",
                                         encoding="utf-8")
    return load_settings(config / "monitor.yaml")


def measure(client: httpx.Client, path: str, repeat: int) -> tuple[float, float, float]:
    """(median server ms, p95 server ms, median round trip ms) over `repeat` requests."""
    client.get(path).raise_for_status()  # warm-up
    server, wall = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(path)
        wall.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        server.append(float(response.headers["server-timing"].split("dur=")[1]))
    server.sort()
    return (statistics.median(server), server[min(len(server) - 1, int(len(server) * 0.95))],
            statistics.median(wall))


def sql_ms(engine, query, repeat: int) -> float:
    with engine.connect() as conn:
        conn.execute(query).all()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            conn.execute(query).all()
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--db", type=Path, default=None, help="reuse or create this SQLite file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = args.db or folder / "bench.db"
        url = f"sqlite:///{db}" if db.exists() else fill(db, args.items)
        engine = read_engine(url)
        with engine.connect() as conn:
            newest = conn.execute(text("SELECT max(id) FROM items")).scalar_one()
            deep = conn.execute(text("SELECT id FROM items ORDER BY id DESC LIMIT 1 OFFSET 1999")
                                ).scalar_one()
            total = conn.execute(text("SELECT count(*) FROM items")).scalar_one()
        since = (datetime.now(UTC) - timedelta(days=200)).date().isoformat()
        until = (datetime.now(UTC) - timedelta(days=190)).date().isoformat()
        print(f"{total} items, newest id {newest}")
        pages = {
            "first page": "/items",
            "2,000 deep (keyset)": f"/items?before={deep}",
            "filtered": "/items?relevant=1&topic=cyber&lang=fr",
            "search": "/items?q=cybersécurité",
            "search, newest first": "/items?q=cybersécurité&sort=published",
            "search, rare word": "/items?q=zygomorphique",
            "search + filters": "/items?q=cybersécurité&relevant=1&lang=fr",
            "one feed": "/items?feed=7",
            "best score first": "/items?sort=score",
            "newest kept first": "/items?sort=kept",
            "language (no index)": "/items?lang=ar",
            "date range": f"/items?since={since}&until={until}",
            "feeds page": "/feeds",
        }
        print(f"\n{'request':<24} {'server ms':>10} {'p95':>8} {'round trip':>11}")
        results = {}
        app = create_app(project(folder, url), engine=engine)
        with running(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            for name, path in pages.items():
                median, p95, wall = measure(client, path, args.repeat)
                results[name] = median
                print(f"{name:<24} {median:>10.1f} {p95:>8.1f} {wall:>11.1f}")

        print(f"\n{'SQL only (median ms)':<34} {'keyset':>8} {'OFFSET':>8} {'ratio':>7}")
        for label, base_filters in (("unfiltered", ItemFilters()),
                                    ("relevant+topic+lang", ItemFilters(
                                        relevant=True, topic="cyber", lang="fr"))):
            for depth in (2000, 50_000):
                if depth >= total:
                    continue
                plain = page_select(base_filters)
                with engine.connect() as conn:
                    ids = conn.execute(plain.with_only_columns(items.c.id).limit(1)
                                       .offset(depth - 1)).scalars().all()
                if not ids:
                    continue
                keyset = page_select(ItemFilters(**{**base_filters.__dict__, "before": ids[0]}))
                offset = plain.offset(depth)
                k_ms = sql_ms(engine, keyset, args.repeat)
                o_ms = sql_ms(engine, offset, args.repeat)
                print(f"{label + f', {depth:,} deep':<34} {k_ms:>8.2f} {o_ms:>8.2f} "
                      f"{o_ms / k_ms:>6.1f}x")
        engine.dispose()
        four = ("first page", "2,000 deep (keyset)", "filtered", "search")
        slow = [name for name in four if results[name] >= 100]
        verdict = "yes" if not slow else f"NO: {', '.join(slow)}"
        print("\nthe four item pages under 100 ms:", verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main())
