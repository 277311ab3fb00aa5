"""lemon24/reader's own update cycle on the same feeds, as a second baseline for steady_state.py.

In: the feed URLs (served with ETag and Last-Modified) and a temporary folder. Out: reader's
feeds/s when every feed answers 304 Not Modified, for each ``workers=`` setting tried, best
kept. A reader database (SQLite) in the folder gets every URL; one ``update_feeds()`` fetches
them (200: the entries and the validators are stored), then one ``update_feeds(workers=W)``
per setting is timed, each one all 304: reader sends the validators it stored and records the
update of every feed, as it does in use. ``scheduled=False``: every feed is updated, whatever
reader's own schedule says (monitor's `run --once` does the same). Every update must report
every feed not modified, or the bench fails.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reader import make_reader

WORKERS = (1, 4, 8, 16, 32)


@dataclass(frozen=True)
class ReaderBaseline:
    best_per_second: float
    best_workers: int
    per_workers: dict[int, float]


def _outcomes(results) -> Counter:
    """Counts of ``updated``, ``not modified`` and each error class in an update's results."""
    counted: Counter[str] = Counter()
    for result in results:
        if result.value is None:
            counted["not modified"] += 1
        elif isinstance(result.value, Exception):
            counted[f"{type(result.value).__name__}: {result.value}"] += 1
        else:
            counted["updated"] += 1
    return counted


def measure_reader(folder: Path, urls: Sequence[str],
                   workers: Sequence[int] = WORKERS) -> ReaderBaseline:
    """reader's update cycle over `urls` when nothing changed, at each of `workers`."""
    folder.mkdir(parents=True, exist_ok=True)
    reader = make_reader(str(folder / "reader.sqlite"))
    try:
        for url in urls:
            reader.add_feed(url)
        first = _outcomes(reader.update_feeds_iter(scheduled=False, workers=max(workers)))
        if first != Counter({"updated": len(urls)}):
            raise SystemExit(f"reader's first update: expected {len(urls)} feeds updated, got "
                             f"{dict(first.most_common(3))}")
        rates = {}
        for count in workers:
            started = time.perf_counter()
            outcomes = _outcomes(reader.update_feeds_iter(scheduled=False, workers=count))
            rates[count] = len(urls) / (time.perf_counter() - started)
            if outcomes != Counter({"not modified": len(urls)}):
                raise SystemExit(f"reader at workers={count}: expected {len(urls)} feeds not "
                                 f"modified, got {dict(outcomes.most_common(3))}")
    finally:
        reader.close()
    best = max(rates, key=rates.__getitem__)
    return ReaderBaseline(rates[best], best, rates)
