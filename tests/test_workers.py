"""Several workers on one PostgreSQL: three workers share 150 feeds, each polled exactly once
per cycle; one killed with SIGKILL mid-cycle loses its feeds to the others when its lease
expires, and nothing is lost or stored twice; `run --workers N` starts, restarts and stops its
processes; SQLite refuses more than one."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import SEEDS, Project
from tests.sites import build_many_feeds

FEEDS = 150
LEASE = 5.0


def _start(project: Project, name: str, *args: str) -> tuple[subprocess.Popen, Path]:
    log_path = project.root / f"{name}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", *args, "--config", str(project.config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=project.root,
        )
    return proc, log_path


def _wait(condition, timeout: float, what: str, procs=()) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, f"a worker exited ({proc.returncode}) while {what}"
        assert time.monotonic() < deadline, f"not done within {timeout}s: {what}"
        time.sleep(0.02)


def _polled_since(engine: sa.Engine, since: datetime) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(
            "SELECT count(DISTINCT feed_id) FROM polls WHERE started_at >= :t"), {"t": since}
        ).scalar()


def _configure(project: Project, postgres_url: str, feeds: list[dict]) -> sa.Engine:
    project.write_settings(
        database_url=postgres_url,
        schedule={"tick": "1s", "workers": 4, "lease": f"{LEASE:g}s"},
        http={"per_host_connections": 4},
    )
    project.write_feeds(feeds)
    project.cli("init")
    return sa.create_engine(postgres_url)


@pytest.mark.slow
def test_three_workers_share_150_feeds_and_one_killed_loses_nothing(
    project: Project, postgres_url: str
) -> None:
    many = build_many_feeds(FEEDS)
    procs: list[subprocess.Popen] = []
    try:
        engine = _configure(project, postgres_url, many.feeds())
        with engine.connect() as conn:
            feed_ids = dict(conn.execute(sa.text("SELECT url, id FROM feeds")).all())
        index_of = {feed_ids[url]: i for i, url in enumerate(many.feed_urls)}

        # Cycle 1: three workers (as on three machines) start together on 150 due feeds.
        first_start, clock = datetime.now(UTC), time.monotonic()
        procs = [_start(project, f"worker{n}")[0] for n in range(3)]
        _wait(lambda: _polled_since(engine, first_start) == FEEDS, 90, "cycle 1", procs)
        first_seconds = time.monotonic() - clock
        assert [many.requests(i) for i in range(FEEDS)] == [1] * FEEDS
        with engine.connect() as conn:
            by_worker = dict(conn.execute(sa.text(
                "SELECT worker, count(*) FROM polls GROUP BY worker")).all())
        assert len(by_worker) == 3 and sum(by_worker.values()) == FEEDS
        assert all(re.fullmatch(r"[^:]+:\d+:[0-9a-f]{8}", w) for w in by_worker)

        # Cycle 2: every feed has a new entry and is due again; one worker is killed mid-cycle.
        for index in range(FEEDS):
            many.add_entry(index, "c")
        before = [many.requests(i) for i in range(FEEDS)]
        victim = procs[0]
        victim_id = next(w for w in by_worker if f":{victim.pid}:" in w)
        second_start, clock = datetime.now(UTC), time.monotonic()
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE feeds SET next_due = :t"), {"t": second_start})

        def victim_leases() -> dict[int, datetime]:
            with engine.connect() as conn:
                return dict(conn.execute(sa.text(
                    "SELECT id, lease_until FROM feeds WHERE lease_owner = :w"),
                    {"w": victim_id}).all())

        _wait(lambda: _polled_since(engine, second_start) >= FEEDS // 5 and victim_leases(),
              60, "the victim polling in cycle 2", procs)
        victim.send_signal(signal.SIGKILL)
        victim.wait(timeout=10)
        orphaned = victim_leases()  # what it held when it died: now nobody renews these
        assert orphaned
        _wait(lambda: _polled_since(engine, second_start) == FEEDS, 90, "cycle 2", procs[1:])
        second_seconds = time.monotonic() - clock

        polls = [many.requests(i) - before[i] for i in range(FEEDS)]
        assert min(polls) == 1
        twice = {i for i, count in enumerate(polls) if count > 1}
        assert twice <= {index_of[feed_id] for feed_id in orphaned}  # only what it had begun
        assert max(polls) <= 2
        with engine.connect() as conn:
            retaken = conn.execute(sa.text(
                "SELECT feed_id, worker, started_at FROM polls WHERE started_at >= :t "
                "AND feed_id IN :ids AND status <> 'interrupted'").bindparams(
                    sa.bindparam("ids", expanding=True)),
                {"t": second_start, "ids": list(orphaned)}).all()
        assert {row.feed_id for row in retaken} == set(orphaned)
        for row in retaken:  # by the others, once the dead worker's lease had expired
            assert row.worker != victim_id
            assert row.started_at >= orphaned[row.feed_id] - timedelta(seconds=0.5)

        for proc in procs[1:]:
            proc.send_signal(signal.SIGTERM)
        assert [proc.wait(timeout=20) for proc in procs[1:]] == [0, 0]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        many.close()

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT url, relevant, corpus_file FROM items WHERE feed_id IS NOT NULL")).all()
    urls = Counter(row.url for row in rows)
    assert set(urls) == many.links() and max(urls.values()) == 1  # every entry, once
    assert {row.url for row in rows if row.relevant} == many.relevant_links
    names = [p.name for p in project.corpus.glob("*.txt")]
    numbers = [int(name.split("_")[0]) for name in names]
    assert len(set(numbers)) == len(numbers)  # unique; gaps allowed
    assert len(names) == len(SEEDS) + len(many.relevant_links)
    assert {row.corpus_file for row in rows if row.relevant} == set(names) - {
        s.name for s in SEEDS}
    print(f"\n{FEEDS} feeds, 3 workers x 4 threads: cycle 1 {first_seconds:.1f}s "
          f"(1.000 polls/feed, by worker {sorted(by_worker.values())}); cycle 2 with a SIGKILL "
          f"{second_seconds:.1f}s ({sum(polls) / FEEDS:.3f} polls/feed, {len(orphaned)} feeds "
          f"orphaned, {len(twice)} polled twice); {len(rows)} items, "
          f"{len(names) - len(SEEDS)} corpus files")


@pytest.mark.slow
def test_run_workers_starts_restarts_and_stops_its_processes(
    project: Project, postgres_url: str
) -> None:
    many = build_many_feeds(30, hosts=4, first_host=40)
    proc = None
    try:
        engine = _configure(project, postgres_url, many.feeds())
        start = datetime.now(UTC)
        proc, log_path = _start(project, "parent", "--workers", "3")
        _wait(lambda: _polled_since(engine, start) == 30, 60, "the first cycle", [proc])
        assert [many.requests(i) for i in range(30)] == [1] * 30
        log = log_path.read_text()
        pids = [int(pid) for pid in re.findall(r"worker \d/3 started \(pid (\d+)\)", log)]
        assert len(pids) == 3
        with engine.connect() as conn:
            workers = conn.execute(sa.text("SELECT DISTINCT worker FROM polls")).scalars().all()
        assert {int(w.split(":")[1]) for w in workers} <= set(pids)

        os.kill(pids[1], signal.SIGKILL)

        def restarted() -> bool:
            _, died, after = log_path.read_text().partition("died (signal SIGKILL)")
            return bool(died) and "monitor started" in after

        _wait(restarted, 20, "the restart of the killed worker", [proc])

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = log_path.read_text()
        assert f"worker 2 (pid {pids[1]}) died (signal SIGKILL)" in log
        assert log.count("monitor stopped") == 3 and "all 3 workers stopped" in log
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
        many.close()


def test_more_than_one_worker_is_refused_on_sqlite(project: Project) -> None:
    proc = project.cli("run", "--workers", "2", check=False)
    assert proc.returncode == 2
    assert "--workers 2 needs PostgreSQL" in proc.stderr and "Traceback" not in proc.stderr
    proc = project.cli("run", "--workers", "2", "--once", check=False)
    assert proc.returncode == 2
