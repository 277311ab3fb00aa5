"""Feed state in the store, on both backends: batched poll records, feeds that moved (301/308)
and feeds gone (410), unhealthy feeds, the interval in effect, as `monitor feeds list` shows
them; a batch stores what one transaction per poll stores."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monitor.settings import FeedSpec, ScheduleSettings
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import claim_due_feeds, sync_feeds
from monitor.store.health import feed_health
from monitor.store.items import NewItem, insert_item
from monitor.store.polls import PollRecord, record_poll, record_polls
from monitor.store.schema import feeds, polls
from tests.conftest import Project, project_engine

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
LEASE = NOW + timedelta(minutes=10)
SCHEDULE = ScheduleSettings(unhealthy_after=3)


def _specs(count: int) -> list[FeedSpec]:
    return [FeedSpec(url=f"https://site{i}.ma/rss", name=f"site {i}") for i in range(count)]


def _engine(url: str, count: int) -> sa.Engine:
    engine = make_engine(url)
    create_schema(engine)
    sync_feeds(engine, _specs(count), NOW)
    return engine


def _record(feed_id: int, status: str = "ok", **values) -> PollRecord:
    base = dict(feed_id=feed_id, started_at=NOW, finished_at=NOW + timedelta(seconds=2),
                status=status, next_due=NOW)
    if status == "error":
        base.update(error_reason="http-500", error_message="the site answered 500")
    return PollRecord(**{**base, **values})


def _claim(engine: sa.Engine, owner: str = "w:1:a", at: datetime = LATER) -> list:
    return claim_due_feeds(engine, owner=owner, now=at, lease_until=at + timedelta(minutes=10),
                           limit=100, due_only=False)


def _health(engine: sa.Engine) -> dict[str, dict]:
    return {row["url"]: row for row in feed_health(engine, SCHEDULE)}


def test_record_polls_writes_a_batch_of_polls_and_feed_states(database_url: str) -> None:
    engine = _engine(database_url, count=4)
    claimed = _claim(engine, at=NOW)
    ids = [feed.id for feed in claimed]
    record_polls(engine, [
        (_record(ids[0], etag='"v2"', last_modified="Sat, 01 Mar 2025 07:00:00 GMT",
                 body_hash="ab" * 32, adaptive_interval=5400.0, worker="w:1:a",
                 next_due=LATER), 0),
        (_record(ids[1], "error", worker="someone:else:x", next_due=LATER), 4),
        (_record(ids[2], "not-modified", etag="ignored", next_due=LATER), 0),
        (_record(ids[3], "interrupted", body_hash="cd" * 32, worker="w:1:a"), 0),
    ])
    record_polls(engine, [])  # nothing to do, no transaction
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(feeds))}
        assert conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar() == 4
        stored = conn.execute(sa.select(polls.c.feed_id, polls.c.status, polls.c.error_reason,
                                        polls.c.worker).order_by(polls.c.feed_id)).all()
    assert [tuple(p) for p in stored] == [
        (ids[0], "ok", None, "w:1:a"), (ids[1], "error", "http-500", "someone:else:x"),
        (ids[2], "not-modified", None, None), (ids[3], "interrupted", None, "w:1:a")]
    ok, failed, same, cut = (rows[i] for i in ids)
    assert (ok.etag, ok.body_hash, ok.adaptive_interval) == ('"v2"', "ab" * 32, 5400.0)
    assert ok.last_status == "ok" and ok.last_success_at == NOW + timedelta(seconds=2)
    assert ok.lease_owner is None and ok.next_due == LATER  # our lease: freed
    assert failed.error_streak == 4 and failed.last_status == "http-500"
    assert failed.last_error == "the site answered 500" and failed.last_success_at is None
    assert failed.lease_owner == "w:1:a"  # not the recorder's lease: kept
    assert same.etag is None and same.lease_owner is None  # no worker: freed whoever holds it
    assert cut.body_hash is None and cut.last_status == "interrupted"  # validators untouched
    assert ok.adaptive_interval == 5400.0 and same.adaptive_interval is None
    # a later poll without a learnt interval keeps the stored one
    record_polls(engine, [(_record(ids[0]), 0)])
    health = {row["id"]: row for row in feed_health(engine, SCHEDULE)}
    assert health[ids[0]]["interval"] == 5400.0
    assert health[ids[0]]["interval_source"] == "adaptive"
    assert health[ids[2]]["interval"] == 1800.0 and health[ids[2]]["interval_source"] == "default"


def test_a_moved_feed_is_fetched_at_its_new_url_and_keeps_its_id_and_items(
        database_url: str) -> None:
    engine = _engine(database_url, count=2)
    first = _claim(engine, at=NOW)
    assert all(feed.fetch_url == feed.url for feed in first)
    moved = first[0]
    insert_item(engine, NewItem(
        feed_id=moved.id, guid="g1", url="https://site0.ma/a", canonical_url="https://site0.ma/a",
        title="Titre", summary="", published=None, fetched_at=NOW, lang="fr", text="Texte",
        text_source="page", text_error=None, text_error_message=None, content_hash="h",
        relevant=True, score=1.0, topics=[], matches=[], rules_version="r", corpus_file=None))
    record_polls(engine, [(_record(moved.id, moved_to="https://new.site0.ma/feed.xml",
                                   worker="w:1:a"), 0),
                          (_record(first[1].id, worker="w:1:a"), 0)])
    again = {feed.id: feed for feed in _claim(engine)}
    assert again[moved.id].fetch_url == "https://new.site0.ma/feed.xml"
    assert again[moved.id].url == "https://site0.ma/rss"  # as configured, still its key
    assert again[first[1].id].fetch_url == first[1].url
    health = _health(engine)
    assert health["https://site0.ma/rss"]["fetch_url"] == "https://new.site0.ma/feed.xml"
    assert health["https://site0.ma/rss"]["items"] == 1
    assert health["https://site0.ma/rss"]["id"] == moved.id
    assert health["https://site1.ma/rss"]["fetch_url"] is None


def test_a_gone_feed_is_not_claimed_until_its_entry_changes(database_url: str) -> None:
    engine = _engine(database_url, count=2)
    gone, other = _claim(engine, at=NOW)
    record_polls(engine, [
        (_record(gone.id, "error", http_status=410, error_reason="http-410",
                 error_message="the site answered 410 Gone", disabled_reason="http-410",
                 moved_to="https://elsewhere.ma/rss", next_due=LATER), 1),
        (_record(other.id, next_due=LATER), 0)])
    far = LATER + timedelta(days=30)
    assert [feed.id for feed in _claim(engine, at=far)] == [other.id]
    assert _health(engine)["https://site0.ma/rss"]["disabled_reason"] == "http-410"
    # the same feeds.yaml again changes nothing: still stopped
    assert not sync_feeds(engine, _specs(2), far)
    assert _claim(engine, owner="w:2:b", at=far + timedelta(minutes=5)) == []  # other: leased
    # its entry edited (a new name): polled again, due at once, from its configured URL
    edited = [FeedSpec(url="https://site0.ma/rss", name="site zero"), _specs(2)[1]]
    assert sync_feeds(engine, edited, far).changed == ("https://site0.ma/rss",)
    back = _claim(engine, owner="w:3:c", at=far)
    assert [feed.id for feed in back] == [gone.id]
    assert back[0].fetch_url == "https://site0.ma/rss"
    row = _health(engine)["https://site0.ma/rss"]
    assert row["disabled_reason"] is None and row["fetch_url"] is None


def test_a_gone_feed_removed_and_added_back_is_fresh(database_url: str) -> None:
    engine = _engine(database_url, count=1)
    (gone,) = _claim(engine, at=NOW)
    record_polls(engine, [(_record(gone.id, "error", disabled_reason="http-410"), 1)])
    assert sync_feeds(engine, [], LATER).removed == ("https://site0.ma/rss",)
    assert sync_feeds(engine, _specs(1), LATER).changed == ("https://site0.ma/rss",)
    assert [feed.id for feed in _claim(engine)] == [gone.id]


def test_unhealthy_after_n_failures_and_cleared_by_a_success(database_url: str) -> None:
    engine = _engine(database_url, count=1)
    (feed,) = _claim(engine, at=NOW)
    seen = []
    for streak in range(1, 5):
        record_polls(engine, [(_record(feed.id, "error"), streak)])
        seen.append(_health(engine)["https://site0.ma/rss"]["unhealthy"])
    assert seen == [False, False, True, True]  # unhealthy_after=3
    record_polls(engine, [(_record(feed.id), 0)])
    row = _health(engine)["https://site0.ma/rss"]
    assert not row["unhealthy"] and row["error_streak"] == 0 and row["last_error"] is None


def test_feeds_list_shows_stopped_moved_unhealthy_and_the_interval(
        project: Project, backend: str) -> None:
    project.write_settings(schedule={"unhealthy_after": 2})
    project.write_feeds([{"url": "https://gone.ma/rss", "name": "Gone"},
                         {"url": "https://moved.ma/rss", "name": "Moved", "interval": "2h"},
                         {"url": "https://flaky.ma/rss", "name": "Flaky"}])
    project.cli("init")  # creates the database and syncs feeds.yaml
    engine = project_engine(project)
    ids = {feed.url: feed.id for feed in _claim(engine)}
    record_polls(engine, [
        (_record(ids["https://gone.ma/rss"], "error", error_reason="http-410",
                 error_message="gone for good", disabled_reason="http-410"), 1),
        (_record(ids["https://moved.ma/rss"], moved_to="https://new.moved.ma/rss",
                 adaptive_interval=600.0), 0),
        (_record(ids["https://flaky.ma/rss"], "error"), 2),
    ])
    engine.dispose()
    rows = {r["url"]: r for r in map(json.loads,
                                     project.cli("feeds", "list", "--json").stdout.splitlines())}
    gone, moved, flaky = (rows[f"https://{n}.ma/rss"] for n in ("gone", "moved", "flaky"))
    assert gone["disabled_reason"] == "http-410" and not gone["unhealthy"]
    assert moved["fetch_url"] == "https://new.moved.ma/rss"
    assert (moved["interval"], moved["interval_source"]) == (7200, "configured")
    assert flaky["unhealthy"] and flaky["interval_source"] == "default"
    text = project.cli("feeds", "list").stdout
    print(text)
    assert "stopped: http-410 (change its entry in feeds.yaml to poll it again)" in text
    assert "moved to https://new.moved.ma/rss" in text
    assert "UNHEALTHY: 2 failures in a row" in text
    assert "every=2h(configured)" in text and "every=30min(default)" in text
    # editing the stopped feed's entry brings it back
    project.write_feeds([{"url": "https://gone.ma/rss", "name": "Gone (new address checked)"},
                         {"url": "https://moved.ma/rss", "name": "Moved", "interval": "2h"},
                         {"url": "https://flaky.ma/rss", "name": "Flaky"}])
    rows = {r["url"]: r for r in map(json.loads,
                                     project.cli("feeds", "list", "--json").stdout.splitlines())}
    assert rows["https://gone.ma/rss"]["disabled_reason"] is None
    assert "stopped:" not in project.cli("feeds", "list").stdout


def test_one_batch_stores_what_one_transaction_per_poll_stores(tmp_path) -> None:
    """The batch writes every poll and every feed's state, as polls written one by one do.
    (What batching saves is measured by bench/poll_records.py.)"""
    count = 50
    for way in ("record_poll", "record_polls"):
        engine = _engine(f"sqlite:///{tmp_path / (way + '.db')}", count=count)
        with engine.connect() as conn:
            ids = conn.execute(sa.select(feeds.c.id).order_by(feeds.c.id)).scalars().all()
        outcomes = [(_record(feed_id, etag=f'"{n}"', next_due=LATER, adaptive_interval=n + 1.0),
                     0) for n, feed_id in enumerate(ids)]
        if way == "record_polls":
            record_polls(engine, outcomes)
        else:
            for record, streak in outcomes:
                with engine.begin() as conn:
                    record_poll(conn, record, error_streak=streak)
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar() == count
            stored = dict(conn.execute(sa.select(feeds.c.id, feeds.c.etag)).all())
            assert stored == {feed_id: f'"{n}"' for n, feed_id in enumerate(ids)}
            assert conn.execute(sa.select(sa.func.sum(feeds.c.adaptive_interval))).scalar() == (
                count * (count + 1) / 2)
        engine.dispose()


def test_outcomes_of_one_feed_in_one_batch_apply_in_their_order(database_url: str) -> None:
    """A feed polled twice before the recorder writes: its second outcome applies after the
    first, as it would in a transaction of its own (a failure keeps the success before it, a
    304 keeps where the feed moved to); texts of any script, an interval that is not a number
    keeps the stored one."""
    engine = _engine(database_url, count=2)
    first, second = (feed.id for feed in _claim(engine, at=NOW))
    later = NOW + timedelta(minutes=5)
    record_polls(engine, [
        (_record(first, etag='"v1"', body_hash="ab" * 32, adaptive_interval=600.0,
                 next_due=later), 0),
        (_record(second, moved_to="https://site1.ma/nouveau.xml", next_due=later), 0),
        (PollRecord(feed_id=first, started_at=later, finished_at=later, status="error",
                    next_due=LATER, error_reason="http-503",
                    error_message="الموقع لا يجيب 🙁 \"503\" \\ retry", adaptive_interval=None),
         1),
        (_record(second, "not-modified", adaptive_interval=float("nan"), next_due=LATER), 0),
    ])
    with engine.connect() as conn:
        rows = {row.id: row for row in conn.execute(sa.select(feeds))}
        assert conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar() == 4
        messages = conn.execute(sa.select(polls.c.error_message)
                                .where(polls.c.error_message.isnot(None))).scalars().all()
    failed, moved = rows[first], rows[second]
    assert failed.last_status == "http-503" and failed.error_streak == 1
    assert failed.last_error == messages[0] == "الموقع لا يجيب 🙁 \"503\" \\ retry"
    assert failed.last_success_at == NOW + timedelta(seconds=2)  # the first outcome's
    assert (failed.etag, failed.body_hash, failed.adaptive_interval) == ('"v1"', "ab" * 32, 600.0)
    assert failed.next_due == LATER and failed.last_polled_at == later
    assert moved.fetch_url == "https://site1.ma/nouveau.xml" and moved.last_status == "not-modified"
    assert moved.adaptive_interval is None and moved.next_due == LATER


def test_a_batch_is_a_few_sqlite_statements_whatever_its_size(tmp_path) -> None:
    """On SQLite a batch runs as two statements (a third for a feed that comes twice), not two
    per outcome: the sqlite3 module lets go of the GIL at every statement run, and each then
    waits for a busy event loop to hand it back (an executemany runs once per row)."""
    engine = _engine(f"sqlite:///{tmp_path / 'polls.db'}", count=300)
    with engine.connect() as conn:
        ids = conn.execute(sa.select(feeds.c.id).order_by(feeds.c.id)).scalars().all()
    run: list[str] = []
    sa.event.listen(engine, "connect", lambda dbapi, _: dbapi.set_trace_callback(run.append))
    engine.dispose()  # new connections, traced
    record_polls(engine, [(_record(feed_id, etag=f'"{n}"'), 0) for n, feed_id in enumerate(ids)]
                 + [(_record(ids[0], "error"), 1)])
    assert _writes(run) == ["INSERT", "UPDATE", "UPDATE"]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(polls)).scalar() == 301
        stored = dict(conn.execute(sa.select(feeds.c.id, feeds.c.etag)).all())
        streaks = dict(conn.execute(sa.select(feeds.c.id, feeds.c.error_streak)).all())
    assert stored == {feed_id: f'"{n}"' for n, feed_id in enumerate(ids)}
    assert streaks[ids[0]] == 1 and sum(streaks.values()) == 1


def test_an_sqlite_taking_few_parameters_gets_the_batch_in_more_statements(tmp_path) -> None:
    """A library built to take fewer parameters in one statement than the usual 32,766 (set
    lower here, as such a build would have it) gets the same rows in more statements."""
    engine = _engine(f"sqlite:///{tmp_path / 'polls.db'}", count=30)
    with engine.connect() as conn:
        ids = conn.execute(sa.select(feeds.c.id).order_by(feeds.c.id)).scalars().all()
    run: list[str] = []

    def connected(dbapi, _record) -> None:
        dbapi.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # a few outcomes' worth
        dbapi.set_trace_callback(run.append)

    sa.event.listen(engine, "connect", connected)
    engine.dispose()
    record_polls(engine, [(_record(feed_id, etag=f'"{n}"'), 0) for n, feed_id in enumerate(ids)])
    writes = _writes(run)
    assert writes.count("INSERT") >= 30 * 13 // 100  # 13 values a poll row
    assert writes == ["INSERT"] * writes.count("INSERT") + ["UPDATE"] * writes.count("INSERT")
    with engine.connect() as conn:
        polled = conn.execute(sa.select(polls.c.feed_id).order_by(polls.c.id)).scalars().all()
        stored = dict(conn.execute(sa.select(feeds.c.id, feeds.c.etag)).all())
    assert polled == ids
    assert stored == {feed_id: f'"{n}"' for n, feed_id in enumerate(ids)}


def _writes(run: list[str]) -> list[str]:
    """The poll rows' INSERTs and the feeds' UPDATEs among the statements SQLite ran."""
    return ["INSERT" if "INSERT INTO polls" in sql else "UPDATE" for sql in run
            if "INSERT INTO polls" in sql or "UPDATE feeds" in sql]
