"""One story stored once, on both backends: the same story through two feeds is one item with
two sources (same canonical URL, the page's canonical URL, a tracking variant, the same text),
short texts never merge, copies of one dispatch share a near-duplicate cluster (also when two
engines, as two workers, store them), races end on the unique keys, a feed's canonical URLs are
looked up in two queries whatever their number, and a 0005 database with items gets their
source rows."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import Engine, select

from monitor import neardup
from monitor.identity import canonical_url, content_hash
from monitor.settings import FeedSpec
from monitor.store import migrate
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import sync_feeds
from monitor.store.items import (
    NewItem,
    add_source,
    find_story,
    insert_items,
    stored_entries,
    stories_by_url,
)
from monitor.store.schema import item_bands, item_sources, items

NOW = datetime(2025, 7, 28, 9, 0, tzinfo=UTC)
TEXTS = Path(__file__).resolve().parent / "fixtures" / "neardup" / "texts.jsonl"
RECORDS = {r["id"]: r for r in map(json.loads, TEXTS.read_text(encoding="utf-8").splitlines())}
OCP = RECORDS["mfn-8465c54ed54b"]["text"]  # Medias24's reprint of an OCP communiqué
OCP_FNH = RECORDS["mfn-17fee381bee8"]["text"]  # Finance News' reprint of the same, edited
OTHER = RECORDS["mfn-a76afc7bd0a9"]["text"]  # Medias24, another story, same page template


def _engine(url: str, feeds: int = 3) -> Engine:
    engine = make_engine(url)
    create_schema(engine)
    sync_feeds(engine, [FeedSpec(url=f"https://site{i}.ma/rss", name=f"Site {i}")
                        for i in range(1, feeds + 1)], NOW)
    return engine


def _item(feed_id: int, guid: str, url: str | None, text: str, **overrides) -> NewItem:
    values = dict(
        feed_id=feed_id, guid=guid, url=url, canonical_url=canonical_url(url) if url else None,
        title=text[:60], summary=text[:200], published=None,
        fetched_at=NOW + timedelta(minutes=feed_id), lang="fr", text=text, text_source="page",
        text_error=None, text_error_message=None, content_hash=content_hash(text),
        relevant=False, score=0.0, topics=[], matches=[], rules_version="r", corpus_file=None)
    return NewItem(**{**values, **overrides})


def _sources(engine: Engine, item_id: int) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(
            select(item_sources.c.feed_id, item_sources.c.guid, item_sources.c.url)
            .where(item_sources.c.item_id == item_id).order_by(item_sources.c.id))]


def _count(engine: Engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(sa.func.count()).select_from(table)).scalar_one()


def _clusters(engine: Engine, ids: list[int]) -> list[int | None]:
    with engine.connect() as conn:
        found = dict(conn.execute(select(items.c.id, items.c.cluster)
                                  .where(items.c.id.in_(ids))).all())
    return [found[i] for i in ids]


def test_same_canonical_url_in_two_feeds_is_one_item_with_two_sources(database_url: str) -> None:
    engine = _engine(database_url)
    [first] = insert_items(engine, [_item(1, "a-1", "https://www.le360.ma/tech/ia-123", OCP)])
    # the second feed links with tracking decorations and a changed summary
    variant = "https://WWW.le360.ma/tech/ia-123?utm_source=rss&fbclid=zz#comments"
    assert insert_items(engine, [_item(2, "b-77", variant, OCP + " (MAP)")]) == [None]
    assert _sources(engine, first) == [(1, "a-1", "https://www.le360.ma/tech/ia-123"),
                                       (2, "b-77", variant)]
    assert _count(engine, items) == 1
    assert stored_entries(engine, 2, ["b-77", "b-78"], [])[0] == {"b-77"}
    assert stored_entries(engine, 1, ["b-77", "a-1"], [])[0] == {"a-1"}
    with engine.connect() as conn:
        assert find_story(conn, canonical_urls=[canonical_url(variant)],
                          content_hash=None) == first


def test_stored_entries_finds_guids_and_stories_in_one_statement_per_chunk(
        database_url: str) -> None:
    engine = _engine(database_url)
    first, second = insert_items(engine, [
        _item(1, "a-1", "https://www.le360.ma/tech/ia-123", OCP),
        _item(2, "b-1", "https://medias24.ma/autre", OTHER)])
    guids = [f"a-{n}" for n in range(700)]  # two chunks of GUIDs
    urls = ["https://www.le360.ma/tech/ia-123", "https://medias24.ma/autre",
            *(f"https://x.ma/{n}" for n in range(1100))]  # three chunks of URLs
    selects: list[str] = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: selects.append(statement)
                    if "SELECT" in statement.upper() else None)
    for feed_id, found_guids in ((1, {"a-1"}), (2, set())):
        selects.clear()
        assert stored_entries(engine, feed_id, guids, urls) == (
            found_guids, {urls[0]: first, urls[1]: second})
        assert len(selects) == 3  # GUIDs and URLs, GUIDs and URLs, URLs
    assert stored_entries(engine, 1, ["a-1", "b-1"], []) == ({"a-1"}, {})
    assert stored_entries(engine, 2, [], urls[:2]) == (set(), {urls[0]: first, urls[1]: second})
    assert stored_entries(engine, 2, [], []) == (set(), {})
    engine.dispose()

def test_stories_by_url_finds_every_url_in_two_queries(database_url: str) -> None:
    engine = _engine(database_url)
    first, second = insert_items(engine, [
        _item(1, "a-1", "https://www.le360.ma/tech/ia-123", OCP),
        _item(2, "b-1", "https://medias24.ma/autre", OTHER)])
    # a third feed's entry with another link to the first story: a source with its own URL
    tracked = "https://feeds.le360.ma/~r/tech/ia-123"
    assert insert_items(engine, [_item(3, "c-1", tracked, OCP)]) == [None]
    urls = [canonical_url("https://www.le360.ma/tech/ia-123"), canonical_url(tracked),
            canonical_url("https://medias24.ma/autre")]
    urls += [f"https://nowhere.ma/{n}" for n in range(1200)]  # three IN lists of 500
    selects = []
    sa.event.listen(engine, "before_cursor_execute",
                    lambda conn, cursor, statement, *rest: selects.append(statement)
                    if statement.lstrip().upper().startswith("SELECT") else None)
    found = stories_by_url(engine, urls)
    assert len(selects) == 6  # two per 500 URLs (one with the first chunk's three stories)
    assert found == {urls[0]: first, urls[1]: first, urls[2]: second}
    with engine.connect() as conn:  # as find_story finds each URL alone
        for url, item_id in found.items():
            assert find_story(conn, canonical_urls=[url], content_hash=None) == item_id
    engine.dispose()


def test_the_page_canonical_url_joins_entries_with_other_links(database_url: str) -> None:
    engine = _engine(database_url)
    page = "https://www.le360.ma/tech/ia-123"
    [first] = insert_items(engine, [_item(1, "a-1", "https://feeds.le360.ma/~r/tech/1", OCP,
                                          page_canonical_url=page)])
    # another feed's link is the page's canonical URL itself: known before fetching the page
    with engine.connect() as conn:
        assert find_story(conn, canonical_urls=[page], content_hash=None) == first
        # and the first feed's own link is known too (a source's canonical URL)
        assert find_story(conn, canonical_urls=["https://feeds.le360.ma/~r/tech/1"],
                          content_hash=None) == first
    assert insert_items(engine, [_item(2, "b-1", "https://m.le360.ma/x?id=9", OCP[:-40],
                                       page_canonical_url=page)]) == [None]
    assert [s[0] for s in _sources(engine, first)] == [1, 2]


def test_same_text_under_different_urls_is_one_item(database_url: str) -> None:
    engine = _engine(database_url)
    [first] = insert_items(engine, [_item(1, "a-1", "https://medias24.com/ocp", OCP)])
    reflowed = "  " + OCP.upper().replace(" ", "\n ")  # same words, other case and spacing
    assert insert_items(engine, [_item(2, "b-1", "https://autre.ma/ocp", reflowed)]) == [None]
    assert [s[:2] for s in _sources(engine, first)] == [(1, "a-1"), (2, "b-1")]


def test_short_and_empty_texts_never_merge_by_their_hash(database_url: str) -> None:
    engine = _engine(database_url)
    short = "Le Maroc renforce sa cybersécurité. Lire la suite."
    assert neardup.merge_hash(short, content_hash(short)) is None
    assert neardup.merge_hash(OCP, content_hash(OCP)) == content_hash(OCP)
    ids = insert_items(engine, [
        _item(1, "a-1", "https://a.ma/1", ""),
        _item(2, "b-1", "https://b.ma/1", ""),
        _item(1, "a-2", "https://a.ma/2", short),
        _item(2, "b-2", "https://b.ma/2", short),
    ])
    assert None not in ids and len(set(ids)) == 4
    assert _clusters(engine, ids) == [None] * 4  # no signature either


def test_one_duplicate_does_not_lose_the_rest_of_the_batch(database_url: str) -> None:
    engine = _engine(database_url)
    [first] = insert_items(engine, [_item(1, "a-1", "https://a.ma/1", OCP)])
    ids = insert_items(engine, [
        _item(2, "b-1", "https://b.ma/1", OTHER),
        _item(2, "b-2", "https://a.ma/1?utm_medium=x", "Résumé court."),  # stored: a source
        _item(1, "a-1", "https://a.ma/1-moved", "Autre résumé."),  # (feed, guid) taken
        _item(2, "b-3", "https://b.ma/3", "Un troisième article, court."),
    ])
    assert ids[0] is not None and ids[1:3] == [None, None] and ids[3] is not None
    assert [s[:2] for s in _sources(engine, first)] == [(1, "a-1"), (2, "b-2")]
    assert _count(engine, items) == 3
    with engine.connect() as conn:  # sources are idempotent
        assert not add_source(conn, first, feed_id=2, guid="b-2",
                              url="https://a.ma/1?utm_medium=x", seen_at=NOW)
    with engine.begin() as conn:
        assert add_source(conn, first, feed_id=3, guid="c-1", url=None, seen_at=NOW)
        assert not add_source(conn, first, feed_id=3, guid="c-1", url=None, seen_at=NOW)
        assert not add_source(conn, ids[0], feed_id=3, guid="c-1", url=None, seen_at=NOW)
    assert len(_sources(engine, first)) == 3


def _dispatch_copies() -> list[str]:
    paragraphs = OCP.split(". ")
    return [
        "Rabat, (MAP) – " + OCP,
        ". ".join(paragraphs[:-3]) + ". Lire aussi : Le Maroc et le Vietnam. (Avec MAP)",
        OCP.replace("tonnes", "t").replace("OCP Nutricrops", "le groupe OCP", 1),
    ]


def test_copies_of_one_dispatch_share_a_cluster(database_url: str) -> None:
    engine = _engine(database_url)
    [original] = insert_items(engine, [_item(1, "a-1", "https://medias24.com/ocp", OCP)])
    assert _clusters(engine, [original]) == [None]  # alone so far
    copies = insert_items(engine, [
        _item(2, f"b-{n}", f"https://b.ma/{n}", text) for n, text in enumerate(
            _dispatch_copies() + [OCP_FNH, OTHER])])
    assert None not in copies
    assert _clusters(engine, [original, *copies]) == [original] * 5 + [None]
    with engine.connect() as conn:
        stored = conn.execute(select(items.c.signature).where(items.c.id == original)).scalar()
    assert neardup.from_bytes(stored) == neardup.signature(OCP)
    assert _count(engine, item_bands) == 6 * neardup.BANDS


def test_two_workers_cluster_through_the_database(database_url: str) -> None:
    first, second = _engine(database_url), make_engine(database_url)
    texts = _dispatch_copies()
    signatures = [neardup.signature(t) for t in texts]  # as the extraction processes give them
    [a] = insert_items(first, [_item(1, "a-1", "https://a.ma/1", texts[0],
                                     signature=signatures[0])])
    [b] = insert_items(second, [_item(2, "b-1", "https://b.ma/1", texts[1],
                                      signature=signatures[1])])
    [c] = insert_items(first, [_item(3, "c-1", "https://c.ma/1", texts[2],
                                     signature=signatures[2])])
    [d] = insert_items(second, [_item(3, "c-2", "https://c.ma/2", OTHER)])
    assert _clusters(first, [a, b, c, d]) == [a, a, a, None]


def test_racing_workers_store_one_story_once(database_url: str) -> None:
    engines = [_engine(database_url)] + [make_engine(database_url) for _ in range(3)]
    results: list = [None] * 4
    barrier = threading.Barrier(4)

    def store(n: int) -> None:
        barrier.wait()
        results[n] = insert_items(engines[n], [
            _item(n % 3 + 1, f"w{n}", f"https://www.le360.ma/ocp?utm_source=w{n}", OCP)])[0]

    threads = [threading.Thread(target=store, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = [r for r in results if r is not None]
    assert len(stored) == 1
    assert _count(engines[0], items) == 1
    assert sorted(s[1] for s in _sources(engines[0], stored[0])) == ["w0", "w1", "w2", "w3"]


def test_migration_from_0005_gives_every_item_its_source(database_url: str) -> None:
    engine = make_engine(database_url)
    migrate.upgrade(engine, "0005")
    stamp = NOW if engine.dialect.name == "postgresql" else NOW.replace(tzinfo=None)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO feeds (url, name, tags, enabled, in_config, next_due, "
            "error_streak, created_at) VALUES ('https://a.ma/rss', 'A', '[]', true, true, "
            ":t, 0, :t)"), {"t": stamp})
        feed = conn.execute(sa.text("SELECT id FROM feeds")).scalar_one()
        for guid, url in (("g1", "https://a.ma/1"), (None, None)):
            conn.execute(sa.text(
                "INSERT INTO items (feed_id, guid, url, canonical_url, title, summary, "
                "fetched_at, text, text_source, content_hash, relevant, score, topics, "
                "matches, rules_version) VALUES (:feed, :guid, :url, :url, 't', '', :t, "
                "'x', 'page', 'h', false, 0, '[]', '[]', 'r')"),
                {"feed": feed if guid else None, "guid": guid, "url": url, "t": stamp})
    create_schema(engine)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
        rows = conn.execute(select(item_sources.c.item_id, item_sources.c.feed_id,
                                   item_sources.c.guid, item_sources.c.canonical_url,
                                   item_sources.c.seen_at)
                            .order_by(item_sources.c.item_id)).all()
        assert [tuple(r[1:4]) for r in rows] == [(feed, "g1", "https://a.ma/1"),
                                                 (None, None, None)]
        assert rows[0].seen_at == NOW
    assert stored_entries(engine, feed, ["g1", "g2"], [])[0] == {"g1"}
    # the old item is found by its URL, and a second feed's copy becomes its source
    sync_feeds(engine, [FeedSpec(url="https://a.ma/rss", name="A"),
                        FeedSpec(url="https://b.ma/rss", name="B")], NOW)
    with engine.connect() as conn:
        second = conn.execute(sa.text("SELECT id FROM feeds WHERE name = 'B'")).scalar_one()
    assert insert_items(engine, [_item(second, "b-1", "https://a.ma/1?utm_source=b", "x")]) == [
        None]
    assert len(_sources(engine, rows[0].item_id)) == 2
