"""The store on both backends: text PostgreSQL refuses is cleaned, claims never overlap,
leases expire and are renewed, a poll frees only its own lease, corpus numbers never repeat."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from monitor.settings import FeedSpec
from monitor.store.corpusnumbers import CorpusNumbers
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import claim_due_feeds, release_leases, renew_leases, sync_feeds
from monitor.store.items import NewItem, insert_item
from monitor.store.listings import item_by_id
from monitor.store.polls import PollRecord, record_poll
from monitor.store.schema import feeds, polls

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


def _engine(url: str, count: int = 0) -> sa.Engine:
    engine = make_engine(url)
    create_schema(engine)
    if count:
        sync_feeds(engine, [FeedSpec(url=f"https://site{i}.ma/rss", name=f"site {i}")
                            for i in range(count)], NOW)
    return engine


def _item(**overrides) -> NewItem:
    values = dict(
        feed_id=None, guid=None, url="https://a.ma/1", canonical_url="https://a.ma/1",
        title="Titre", summary="", published=None, fetched_at=NOW, lang="fr", text="Texte",
        text_source="page", text_error=None, text_error_message=None, content_hash="h",
        relevant=False, score=0.0, topics=[], matches=[], rules_version="r", corpus_file=None,
    )
    return NewItem(**{**values, **overrides})


def test_nul_and_lone_surrogates_are_cleaned_before_storing(database_url: str) -> None:
    engine = _engine(database_url)
    sync_feeds(engine, [FeedSpec(url="https://a.ma/rss", name="Le\x00 Site")], NOW)
    item_id = insert_item(engine, _item(
        title="Cyber\x00sécurité \udcff", text="Le texte\x00 du \ud800 jour",
        summary="a\x00b", topics=["cy\x00ber"],
        matches=[{"term": "x\x00y", "field": "body", "start": 0, "end": 1}],
        text_error_message="bad \udc80 byte"))
    assert item_id is not None
    item = item_by_id(engine, item_id)
    assert item["title"] == "Cybersécurité ?"
    assert item["text"] == "Le texte du ? jour"
    assert item["summary"] == "ab" and item["topics"] == ["cyber"]
    assert item["matches"][0]["term"] == "xy"
    with engine.begin() as conn:
        feed_id, name = conn.execute(sa.select(feeds.c.id, feeds.c.name)).one()
        assert name == "Le Site"
        record_poll(conn, PollRecord(
            feed_id=feed_id, started_at=NOW, finished_at=NOW, status="error", next_due=NOW,
            error_reason="not-a-feed", error_message="garbage \x00\udcfe here"), error_streak=1)
        assert conn.execute(sa.select(polls.c.error_message)).scalar() == "garbage ? here"


def test_concurrent_claims_never_take_the_same_feed(database_url: str) -> None:
    engine = _engine(database_url, count=60)
    taken: dict[str, list[int]] = {}

    def claim(owner: str) -> None:
        mine = taken.setdefault(owner, [])
        while True:
            batch = claim_due_feeds(engine, owner=owner, now=NOW + timedelta(minutes=1),
                                    lease_until=NOW + timedelta(minutes=10), limit=3)
            if not batch:
                return
            mine.extend(feed.id for feed in batch)

    threads = [threading.Thread(target=claim, args=(f"host:{n}:x",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [feed_id for ids in taken.values() for feed_id in ids]
    assert len(every) == len(set(every)) == 60
    with engine.connect() as conn:
        owners = dict(conn.execute(sa.select(feeds.c.id, feeds.c.lease_owner)).all())
    for owner, ids in taken.items():
        assert all(owners[feed_id] == owner for feed_id in ids)


def test_a_lease_expires_unless_renewed(database_url: str) -> None:
    engine = _engine(database_url, count=2)
    lease = timedelta(seconds=30)
    first = claim_due_feeds(engine, owner="a:1:x", now=NOW, lease_until=NOW + lease, limit=1)
    renewed = claim_due_feeds(engine, owner="b:2:y", now=NOW, lease_until=NOW + lease, limit=1)
    assert len(first) == len(renewed) == 1 and first[0].id != renewed[0].id
    # b renews its lease; a does not (it died): after the lease, only a's feed is free again
    assert renew_leases(engine, "b:2:y", NOW + 3 * lease) == 1
    later = NOW + 2 * lease
    retaken = claim_due_feeds(engine, owner="c:3:z", now=later, lease_until=later + lease, limit=5)
    assert [feed.id for feed in retaken] == [first[0].id]
    # a's late poll must not free c's lease; c's own poll does
    for owner, still in (("a:1:x", "c:3:z"), ("c:3:z", None)):
        with engine.begin() as conn:
            record_poll(conn, PollRecord(feed_id=first[0].id, started_at=later,
                                         finished_at=later, status="ok", next_due=later,
                                         worker=owner), error_streak=0)
        with engine.connect() as conn:
            assert conn.execute(sa.select(feeds.c.lease_owner)
                                .where(feeds.c.id == first[0].id)).scalar() == still
    release_leases(engine, "b:2:y")
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).where(
            feeds.c.lease_owner.isnot(None))).scalar() == 0


def test_only_due_feeds_are_claimed_most_overdue_first(database_url: str) -> None:
    engine = _engine(database_url, count=3)
    with engine.begin() as conn:
        ids = conn.execute(sa.select(feeds.c.id).order_by(feeds.c.id)).scalars().all()
        for feed_id, minutes in zip(ids, (5, -10, -20), strict=True):
            conn.execute(sa.update(feeds).where(feeds.c.id == feed_id)
                         .values(next_due=NOW + timedelta(minutes=minutes)))
    claimed = claim_due_feeds(engine, owner="a:1:x", now=NOW, lease_until=NOW + timedelta(1),
                              limit=10)
    assert [feed.id for feed in claimed] == [ids[2], ids[1]]


def test_corpus_numbers_never_repeat_across_concurrent_workers(database_url: str) -> None:
    engine = _engine(database_url)
    numbers = CorpusNumbers(engine)
    assert numbers.register(4, "00000000000000aa")
    assert not numbers.register(4, "00000000000000bb")  # number taken
    got: dict[str, int] = {}

    def reserve(worker: int) -> None:
        mine = CorpusNumbers(make_engine(database_url))
        for n in range(15):
            key = f"{worker:08x}{n:08x}"
            got[key] = mine.reserve(key, floor=2)
            assert mine.reserve(key) == got[key]  # the key keeps its number

    threads = [threading.Thread(target=reserve, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 60 and len(set(got.values())) == 60
    assert min(got.values()) == 5  # after the registered 004
