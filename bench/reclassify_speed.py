"""Benchmark: `reclassify` of many stored items on SQLite.

In: the shipped rules and the real texts of tests/fixtures/rules/*.jsonl. Out: the time to
re-apply the rules to N stored items (default 100,000) in a fresh SQLite file: every item
carries an older rules version, so every verdict is recomputed (matches explained) and written
back, one transaction per batch. The stored relevance is set to what the rules say, so no
corpus file is written: the figure is classification + database, not file creation. Prints
items/s and the total.

    python bench/reclassify_speed.py [--items 100000] [--batch 1000]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.corpus import Corpus  # noqa: E402
from monitor.rules import load_ruleset, split_document  # noqa: E402
from monitor.store.corpusnumbers import CorpusNumbers  # noqa: E402
from monitor.store.engine import create_schema, make_engine  # noqa: E402
from monitor.worker.reclassify import reclassify  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()

    rules = load_ruleset(ROOT / "config" / "rules.yaml")
    texts = []
    for path in sorted((ROOT / "tests" / "fixtures" / "rules").glob("*.jsonl")):
        with path.open(encoding="utf-8") as handle:
            texts += [split_document(json.loads(line)["text"]) for line in handle if line.strip()]
    verdicts = [rules.classify(*doc).relevant for doc in texts]

    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "monitor.db"
        engine = make_engine(f"sqlite:///{database}")
        create_schema(engine)
        started = time.perf_counter()
        rows = []
        for n in range(args.items):
            (title, body), relevant = texts[n % len(texts)], verdicts[n % len(texts)]
            rows.append((f"g{n}", f"https://example.ma/{n}", f"https://example.ma/{n}", title,
                         body, "2025-01-01 00:00:00.000000", "page", f"h{n}", relevant,
                         1.0, "[]", "[]", "old", f"{n:06d}_{n:016x}.txt" if relevant else None))
        with sqlite3.connect(database) as conn:
            conn.executemany(
                "INSERT INTO items (guid, url, canonical_url, title, text, fetched_at, "
                "text_source, content_hash, relevant, score, topics, matches, rules_version, "
                "corpus_file, summary) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,'')", rows)
        size = sum(len(t.encode()) + len(b.encode()) for t, b in texts) / len(texts)
        print(f"{args.items} items stored in {time.perf_counter() - started:.1f}s "
              f"(mean text {size / 1000:.1f} kB, {database.stat().st_size / 1e6:.0f} MB file)")

        corpus = Corpus(Path(folder) / "corpus", CorpusNumbers(engine))
        started = time.perf_counter()
        cpu = time.process_time()
        report = reclassify(engine, rules, corpus, batch=args.batch)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(f"reclassify: {report.rewritten} verdicts rewritten in {wall:.1f}s wall "
              f"({cpu:.1f}s CPU), {report.rewritten / wall:,.0f} items/s; "
              f"{len(report.changes)} relevance changes, {report.corpus_files} corpus files")


if __name__ == "__main__":
    main()
