"""Poll outcomes written in one batch against one transaction per poll, on SQLite.

    python bench/poll_records.py [--polls 2000] [--rounds 3]

In a fresh SQLite file (a temporary folder) of POLLS feeds, POLLS poll outcomes (each with new
validators, a next due time and a learnt interval) are written two ways: one transaction per
poll (`monitor.store.feeds.record_poll`, each in `engine.begin()`), and all of them in one
transaction (`record_polls`, what the recorder does with a batch). Each way runs ROUNDS times on
a new file and is checked (every poll row written, every feed's new state stored); the best
time of each is printed, with the ratio. Not a test: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from monitor.settings import FeedSpec  # noqa: E402
from monitor.store.engine import create_schema, make_engine  # noqa: E402
from monitor.store.feeds import sync_feeds  # noqa: E402
from monitor.store.polls import PollRecord, record_poll, record_polls  # noqa: E402
from monitor.store.schema import feeds, polls  # noqa: E402

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _outcomes(engine: sa.Engine) -> list[tuple[PollRecord, int]]:
    with engine.connect() as conn:
        ids = conn.execute(sa.select(feeds.c.id).order_by(feeds.c.id)).scalars().all()
    return [(PollRecord(feed_id=feed_id, started_at=NOW, finished_at=NOW + timedelta(seconds=2),
                        status="ok", next_due=NOW + timedelta(hours=1), etag=f'"{n}"',
                        adaptive_interval=n + 1.0), 0)
            for n, feed_id in enumerate(ids)]


def _one_transaction_each(engine: sa.Engine, outcomes: list[tuple[PollRecord, int]]) -> None:
    for record, streak in outcomes:
        with engine.begin() as conn:
            record_poll(conn, record, error_streak=streak)


def _check(engine: sa.Engine, outcomes: list[tuple[PollRecord, int]]) -> None:
    with engine.connect() as conn:
        written = conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar()
        etags = dict(conn.execute(sa.select(feeds.c.id, feeds.c.etag)).all())
    if written != len(outcomes) or etags != {r.feed_id: r.etag for r, _ in outcomes}:
        raise SystemExit(f"wrong result: {written} poll rows for {len(outcomes)} outcomes")


def _seconds(folder: Path, name: str, count: int, write) -> float:
    engine = make_engine(f"sqlite:///{folder / name}.db")
    try:
        create_schema(engine)
        sync_feeds(engine, [FeedSpec(url=f"https://site{i}.ma/rss", name=f"site {i}")
                            for i in range(count)], NOW)
        outcomes = _outcomes(engine)
        started = time.perf_counter()
        write(engine, outcomes)
        seconds = time.perf_counter() - started
        _check(engine, outcomes)
        return seconds
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--polls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        each = min(_seconds(folder, f"each{n}", args.polls, _one_transaction_each)
                   for n in range(args.rounds))
        batch = min(_seconds(folder, f"batch{n}", args.polls, record_polls)
                    for n in range(args.rounds))
    print(f"{args.polls} polls recorded on SQLite (best of {args.rounds}): one transaction each "
          f"{each:.3f} s ({args.polls / each:,.0f} polls/s), one batch {batch:.3f} s "
          f"({args.polls / batch:,.0f} polls/s); batching {each / batch:.1f}x faster")


if __name__ == "__main__":
    main()
