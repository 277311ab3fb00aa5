"""The steady state: a cycle where every feed answers 304 Not Modified. It starts no process
(neither the extraction pool nor its fork server), where a feed never fetched starts them with
the cycle, news or not; its claims give each feed's row, most
overdue first; its outcomes are stored at the instants they happened, whatever the zone of
the times handed in."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from monitor.settings import FeedSpec
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import claim_due_feeds, lists_a_feed_never_fetched, sync_feeds
from monitor.store.polls import PollRecord, record_polls
from monitor.store.schema import feeds, polls
from tests.conftest import Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import RSS, rss

# Runs `run_once` in a process of its own (a fork server started by another test of this
# process would hide one started here), then lists that process's children.
_ONCE_THEN_CHILDREN = """
import os, sys
from pathlib import Path
from monitor.settings import load_settings
from monitor.worker.daemon import run_once
report = run_once(load_settings(sys.argv[1]))
children = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()
            and (p / "stat").exists()
            and int((p / "stat").read_bytes().rsplit(b")", 1)[1].split()[1]) == os.getpid()]
print(report.feeds, report.ok, len(children))
"""


def _feeds(site: LoopbackServer, count: int) -> list[dict]:
    for n in range(count):
        entries = [{"title": f"Dépêche {n}", "link": site.url(f"/p{n}"), "guid": f"g{n}"}]
        site.route(f"/feed{n}.xml", Reply(rss(entries, link=site.base_url), content_type=RSS,
                                          conditional=True))
    return [{"url": site.url(f"/feed{n}.xml"), "name": f"feed {n}"} for n in range(count)]


def test_a_cycle_of_304s_starts_no_process(project: Project) -> None:
    with LoopbackServer("127.0.0.61") as site:
        project.write_feeds(_feeds(site, 3))
        project.cli("init")
        project.cli("run", "--once", own_process=True)  # the feeds' news: pages, validators
        done = subprocess.run([sys.executable, "-c", _ONCE_THEN_CHILDREN, str(project.config)],
                              capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3", "0"]  # 3 feeds, 3 ok (not modified), no child


def test_a_feed_never_fetched_starts_the_extraction_processes_with_the_cycle(
        project: Project) -> None:
    with LoopbackServer("127.0.0.61") as site:
        site.route("/feed.xml", Reply(b"busy", status=503))  # no news after all
        project.write_feeds([{"url": site.url("/feed.xml"), "name": "new"}])
        project.cli("init")
        done = subprocess.run([sys.executable, "-c", _ONCE_THEN_CHILDREN, str(project.config)],
                              capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    feeds_polled, ok, children = map(int, done.stdout.split())
    assert (feeds_polled, ok) == (1, 0) and children >= 1  # the fork server, at least


def test_run_once_starts_the_fork_server_before_its_set_up_when_a_feed_was_never_fetched(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.worker import cpupool, forkstart, initdb

    events: list[str] = []
    real_initialise = initdb.initialise
    monkeypatch.setattr(forkstart, "start_fork_server", lambda: events.append("fork server"))
    monkeypatch.setattr(cpupool, "start_fork_server", lambda: events.append("fork server"))

    def initialise(*args):
        events.append("set-up")
        return real_initialise(*args)

    monkeypatch.setattr(initdb, "initialise", initialise)
    with LoopbackServer("127.0.0.61") as site:
        project.write_feeds(_feeds(site, 2))
        project.cli("init")
        events.clear()
        project.cli("run", "--once")  # new feeds: news
        first, events[:] = list(events), []
        project.cli("run", "--once")  # 304s
    assert first[:2] == ["fork server", "set-up"]
    assert events == ["set-up"]  # no news: no process


def test_a_feed_never_fetched_is_told_apart_before_the_feeds_are_synced(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    specs = [FeedSpec(url=f"https://site{n}.example/rss", name=f"feed {n}") for n in range(3)]
    assert lists_a_feed_never_fetched(engine, specs)  # no tables yet: a first run
    create_schema(engine)
    sync_feeds(engine, specs, NOW)
    assert lists_a_feed_never_fetched(engine, specs)
    with engine.begin() as conn:  # fetched once: a body hash, or validators
        conn.execute(sa.update(feeds).values(body_hash="h"))
    assert not lists_a_feed_never_fetched(engine, specs)
    added = FeedSpec(url="https://new.example/rss", name="new")
    assert lists_a_feed_never_fetched(engine, [*specs, added])
    assert not lists_a_feed_never_fetched(engine, [*specs, added.model_copy(
        update={"enabled": False})])
    engine.dispose()


NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def test_a_claim_gives_the_feeds_most_overdue_first_with_their_rows(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    specs = [FeedSpec(url=f"https://site{n}.example/rss", name=f"feed {n}", interval=60 * n)
             for n in range(1, 5)]
    sync_feeds(engine, specs, NOW)
    with engine.begin() as conn:  # due times in reverse order of the ids; one feed moved
        for n in range(1, 5):
            conn.execute(sa.update(feeds).where(feeds.c.url == specs[n - 1].url).values(
                next_due=NOW - timedelta(minutes=n), etag=f'"e{n}"',
                fetch_url="https://moved.example/rss" if n == 2 else None))
    claimed = claim_due_feeds(engine, owner="w:1:a", now=NOW, lease_until=NOW + timedelta(
        minutes=5), limit=10)
    engine.dispose()
    assert [f.name for f in claimed] == ["feed 4", "feed 3", "feed 2", "feed 1"]
    assert [(f.etag, f.interval, f.error_streak) for f in claimed] == [
        ('"e4"', 240.0, 0), ('"e3"', 180.0, 0), ('"e2"', 120.0, 0), ('"e1"', 60.0, 0)]
    assert [f.fetch_url for f in claimed] == [
        "https://site4.example/rss", "https://site3.example/rss", "https://moved.example/rss",
        "https://site1.example/rss"]


def test_outcomes_are_stored_at_their_instant_whatever_their_zone(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    sync_feeds(engine, [FeedSpec(url="https://site.example/rss", name="feed")], NOW)
    [feed] = claim_due_feeds(engine, owner="w:1:a", now=NOW, lease_until=NOW + timedelta(
        minutes=5), limit=1)
    casablanca = timezone(timedelta(hours=1))
    started = NOW.astimezone(casablanca)  # 09:00 +01:00, 08:00 UTC
    record_polls(engine, [(PollRecord(
        feed_id=feed.id, started_at=started, finished_at=started + timedelta(seconds=1),
        status="not-modified", next_due=NOW + timedelta(hours=1), worker="w:1:a"), 0)])
    with engine.connect() as conn:
        poll = conn.execute(sa.select(polls.c.started_at, polls.c.finished_at)).one()
        row = conn.execute(sa.select(feeds.c.last_polled_at, feeds.c.next_due,
                                     feeds.c.lease_owner)).one()
    engine.dispose()
    assert tuple(poll) == (NOW, NOW + timedelta(seconds=1))
    assert tuple(row) == (NOW + timedelta(seconds=1), NOW + timedelta(hours=1), None)


def test_a_claim_on_sqlite_is_three_statements_whatever_its_size(tmp_path: Path) -> None:
    """Three statements run once each (the ids chosen, the lease, the rows), not a row per step
    of an UPDATE ... RETURNING: the driver lets go of the GIL at every step, and each waits for
    a busy event loop to hand it back. The rows come back whole, texts in any script."""
    engine = make_engine(f"sqlite:///{tmp_path / 'claims.db'}")
    create_schema(engine)
    sync_feeds(engine, [FeedSpec(url=f"https://site{n}.example/rss", name=f"موقع \"{n}\" 🙂",
                                 lang="ar", interval=60 * n + 0.5) for n in range(300)], NOW)
    with engine.begin() as conn:
        conn.execute(sa.update(feeds).values(
            etag='"e"', last_modified="Sat, 01 Mar 2025 07:00:00 GMT", body_hash="ab" * 32,
            error_streak=feeds.c.id % 3, adaptive_interval=feeds.c.id * 1.5,
            next_due=NOW - timedelta(minutes=1)))
    run: list[str] = []
    sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(run.append))
    engine.dispose()
    lease = NOW + timedelta(minutes=5)
    claimed = claim_due_feeds(engine, owner="w:1:a", now=NOW, lease_until=lease, limit=250)
    assert [sql.split(None, 1)[0] for sql in run if not sql.startswith(("BEGIN", "COMMIT"))] == [
        "SELECT", "UPDATE", "SELECT"]
    assert claim_due_feeds(engine, owner="w:2:b", now=NOW, lease_until=lease, limit=250)[
        0].id not in {feed.id for feed in claimed}  # the 50 left, not one of ours
    with engine.connect() as conn:
        leased = conn.execute(sa.select(feeds.c.id).where(feeds.c.lease_owner == "w:1:a")
                              .order_by(feeds.c.id)).scalars().all()
    engine.dispose()
    assert len(claimed) == 250 and sorted(feed.id for feed in claimed) == leased
    first = min(claimed, key=lambda feed: feed.id)
    assert (first.name, first.lang, first.interval, first.etag, first.body_hash) == (
        'موقع "0" 🙂', "ar", 0.5, '"e"', "ab" * 32)
    assert {(feed.error_streak, feed.adaptive_interval) for feed in claimed} == {
        (feed.id % 3, feed.id * 1.5) for feed in claimed}
    assert first.last_modified == "Sat, 01 Mar 2025 07:00:00 GMT"
