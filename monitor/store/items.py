"""Item rows, the write side: is an entry new, is its story stored, store a feed's new items.

In: `NewItem`s, GUIDs and canonical URLs. Out: item ids, and which entries and stories are
stored already. Does I/O. (Listings and totals, the read side, are in `listings.py`,
`search.py` and `totals.py`.)

One story is stored once. An item records every feed entry that brought it (`item_sources`);
an entry whose story is already stored (same canonical URL, the entry's or the page's, or the
same text) adds a source to that item instead of a new item. The text hash merges only texts
of at least ``neardup.MIN_MERGE_WORDS`` words: short summaries (and the empty text) are shared
by different stories. Near-duplicates (a dispatch reprinted with edits) stay separate items but
share `items.cluster`, found through the LSH bands of `item_bands` (monitor/neardup.py,
`clusters.py`), all in the database so that every worker process sees every other's items.

A batch of new items is stored in one transaction, in few statements whatever its size: its
stories looked up together, then the new items that share nothing with each other in one
SAVEPOINT (a row and a near-duplicate query each, the bands and the sources each in one
multi-row INSERT); an item sharing a URL, text, feed + GUID or corpus file with another of the
batch goes alone, in its own SAVEPOINT, after the ones before it. The unique keys (feed +
guid, canonical URL, corpus file) stay the final guard when two workers race: a refused
SAVEPOINT is done again one item at a time, so one item refused by them costs only itself. A
new item's alert entries (`NewItem.alerts`) are queued in the outbox in its SAVEPOINT: stored
together, or neither. The outcome is the one of storing the items one after the other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from itertools import zip_longest

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    String,
    bindparam,
    cast,
    func,
    literal_column,
    null,
    select,
    union_all,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Executable

from monitor import neardup
from monitor.identity import canonical_url as canonical_form
from monitor.store import outbox
from monitor.store.clusters import InBatch, clusters_to_join
from monitor.store.engine import ONE_STATEMENT, storage_errors
from monitor.store.schema import item_bands, item_sources, items

_IN_CHUNK = 500  # values per IN (...) list
_BANDS_PER_INSERT = 5000  # rows of item_bands per INSERT (SQLite takes 1 MB statements)


@dataclass(frozen=True)
class NewItem:
    feed_id: int | None
    guid: str | None
    url: str | None
    canonical_url: str | None  # identity.canonical_url of the entry's link
    title: str
    summary: str
    published: datetime | None
    fetched_at: datetime
    lang: str | None
    text: str
    text_source: str  # page | summary | corpus
    text_error: str | None
    text_error_message: str | None
    content_hash: str
    relevant: bool
    score: float
    topics: list[str]
    matches: list[dict]
    rules_version: str
    corpus_file: str | None
    # The page's own canonical URL (extract.Article.canonical_url): the story's URL when known.
    page_canonical_url: str | None = None
    # neardup.signature(text), computed where the text was extracted; None: computed here.
    signature: tuple[int, ...] | None = None
    # neardup's merge_hash and band_keys, computed with the signature; None: computed here.
    merge_hash: str | None = None
    band_keys: tuple[int, ...] | None = None
    # The alerts to announce it (queued in the outbox with it), if it is stored as a new item.
    alerts: tuple[str, ...] = ()


_COLUMNS = [field.name for field in fields(NewItem) if field.name not in  # those of the table
            ("page_canonical_url", "merge_hash", "band_keys", "alerts")]


def _entry_look_ups() -> dict[tuple[bool, bool], Executable]:
    """`stored_entries`'s statement, built once (building and caching a statement anew was
    most of its cost), by whether it looks up GUIDs, URLs or both: the feed's sources with
    these GUIDs, the items with these canonical URLs, the sources' first item for them."""
    by_guid = (select(literal_column("'guid'", String).label("kind"),
                      item_sources.c.guid.label("key"), cast(null(), Integer).label("item_id"))
               .where(item_sources.c.feed_id == bindparam("feed_id"),
                      item_sources.c.guid.in_(bindparam("guids", expanding=True))))
    in_items = (select(literal_column("'item'", String), items.c.canonical_url, items.c.id)
                .where(items.c.canonical_url.in_(bindparam("urls", expanding=True))))
    in_sources = (select(literal_column("'source'", String), item_sources.c.canonical_url,
                         func.min(item_sources.c.item_id))
                  .where(item_sources.c.canonical_url.in_(bindparam("urls", expanding=True)))
                  .group_by(item_sources.c.canonical_url))
    return {(True, True): union_all(by_guid, in_items, in_sources), (True, False): by_guid,
            (False, True): union_all(in_items, in_sources)}


_ENTRY_LOOK_UPS = _entry_look_ups()


@storage_errors
def stored_entries(engine: Engine, feed_id: int, guids: Sequence[str], urls: Sequence[str]
                   ) -> tuple[set[str], dict[str, int]]:
    """Which of these entries (GUIDs) of a feed are stored already (as a source of some item),
    and `stories_by_url` of `urls`: a poll's look-ups before any page is fetched, in one
    statement per 500 GUIDs and 500 URLs (a UNION ALL of the three look-ups)."""
    known: set[str] = set()
    in_items: dict[str, int] = {}
    in_sources: dict[str, int] = {}
    # One statement, unless there are more than 500 GUIDs or URLs (then no common snapshot is
    # needed either: what one statement misses, stored meanwhile, is found when it is stored).
    with engine.connect().execution_options(**{ONE_STATEMENT: True}) as conn:
        for guid_chunk, url_chunk in zip_longest(_chunks(guids),
                                                 _chunks([url for url in urls if url])):
            statement = _ENTRY_LOOK_UPS[bool(guid_chunk), bool(url_chunk)]
            for found, key, item_id in conn.execute(statement, {
                    "feed_id": feed_id, "guids": guid_chunk, "urls": url_chunk}):
                if found == "guid":
                    known.add(key)
                else:
                    (in_items if found == "item" else in_sources)[key] = item_id
    # As `stories_by_url`: the item with that canonical URL first, else the sources'.
    return known, {**in_sources, **in_items}


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    """The distinct values, `_IN_CHUNK` at a time (one IN (...) list each)."""
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), _IN_CHUNK):
        yield unique[start:start + _IN_CHUNK]


@storage_errors
def stories_by_url(engine: Engine, urls: Sequence[str]) -> dict[str, int]:
    """{canonical URL: the item holding its story} for those of `urls` already stored: as
    `find_story` finds it for each URL alone (the item with that canonical URL, else the first
    item a source with that entry URL brought), in two queries per 500 URLs."""
    with engine.connect() as conn:
        in_items, in_sources = _url_holders(conn, urls)
    return {**in_sources, **in_items}


def _url_holders(conn: Connection, urls: Sequence[str | None]
                 ) -> tuple[dict[str, int], dict[str, int]]:
    """For those of `urls` stored: {URL: the item with that canonical URL} and {URL: the first
    item a source with that entry URL brought}; two queries per 500 URLs."""
    in_items: dict[str, int] = {}
    in_sources: dict[str, int] = {}
    for chunk in _chunks([url for url in urls if url]):
        in_items.update(conn.execute(select(items.c.canonical_url, items.c.id)
                                     .where(items.c.canonical_url.in_(chunk))).all())
        in_sources.update(conn.execute(
            select(item_sources.c.canonical_url, func.min(item_sources.c.item_id))
            .where(item_sources.c.canonical_url.in_(chunk))
            .group_by(item_sources.c.canonical_url)).all())
    return in_items, in_sources


@storage_errors
def story_of(engine: Engine, canonical_urls: Sequence[str], content_hash: str | None
             ) -> int | None:
    """`find_story` in a transaction of its own."""
    with engine.connect() as conn:
        return find_story(conn, canonical_urls=canonical_urls, content_hash=content_hash)


@storage_errors
def add_sources(engine: Engine, feed_id: int,
                sources: Sequence[tuple[int, str | None, str | None]]) -> None:
    """Record `feed_id` as a source of stored stories: (item id, GUID, URL) each."""
    seen_at = datetime.now(UTC)
    with engine.begin() as conn:
        for item_id, guid, url in sources:
            add_source(conn, item_id, feed_id=feed_id, guid=guid, url=url, seen_at=seen_at)


def find_story(
    conn: Connection, *, canonical_urls: Sequence[str], content_hash: str | None
) -> int | None:
    """The item already holding this story: by canonical URL (the item's, or one of its
    sources' entry URL), else by exact text hash. Pass `neardup.merge_hash(...)` as
    `content_hash`, never the hash of a short text."""
    urls = [url for url in dict.fromkeys(canonical_urls) if url]
    if urls:
        found = conn.execute(select(items.c.id).where(items.c.canonical_url.in_(urls))
                             .order_by(items.c.id).limit(1)).scalar()
        if found is None:
            found = conn.execute(
                select(item_sources.c.item_id).where(item_sources.c.canonical_url.in_(urls))
                .order_by(item_sources.c.item_id).limit(1)).scalar()
        if found is not None:
            return found
    if content_hash:
        return conn.execute(select(items.c.id).where(items.c.content_hash == content_hash)
                            .order_by(items.c.id).limit(1)).scalar()
    return None


def add_source(
    conn: Connection, item_id: int, *, feed_id: int | None, guid: str | None, url: str | None,
    seen_at: datetime,
) -> bool:
    """Record that a feed entry brought this item; idempotent. True if the source is new."""
    same = select(item_sources.c.id).where(
        item_sources.c.item_id == item_id,
        item_sources.c.feed_id.is_not_distinct_from(feed_id),
        item_sources.c.guid.is_not_distinct_from(guid),
        item_sources.c.url.is_not_distinct_from(url))
    if conn.execute(same.limit(1)).first() is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(item_sources.insert().values(
                item_id=item_id, feed_id=feed_id, guid=guid, url=url,
                canonical_url=canonical_form(url) if url else None, seen_at=seen_at))
    except IntegrityError:
        return False  # this (feed, guid) is already a source, of this item or another
    return True


@storage_errors
def insert_items(engine: Engine, new_items: Sequence[NewItem]) -> list[int | None]:
    """Store a batch of new items in one transaction. Out: each item's new id, or None when its
    story was stored already (its source is then added to that item).

    The batch's stories are looked up together (`_stored_stories`, three statements). An item
    whose story is stored already becomes a source of it; one that shares nothing (URL, text
    hash, feed + GUID, corpus file) with the others of the batch is stored with its neighbours
    of that kind in one SAVEPOINT; the others go one at a time, each looked up again after the
    ones before it (`_insert_one`). A refused SAVEPOINT of several is done again one at a time:
    an item refused by a unique key costs only itself."""
    with engine.begin() as conn:
        text_hashes = [item.merge_hash or neardup.merge_hash(item.text, item.content_hash)
                       for item in new_items]  # once per item, if not given: it reads the words
        stored = _stored_stories(conn, new_items, text_hashes)
        ids: list[int | None] = []
        run: list[tuple[NewItem, str | None]] = []  # neighbours that share nothing, together
        for item, text_hash, story, shares in zip(new_items, text_hashes, stored,
                                                  _sharing_keys(new_items, text_hashes),
                                                  strict=True):
            if story is None and not shares:
                run.append((item, text_hash))
                continue
            ids += _store_run(conn, run)
            run = []
            if shares:
                ids.append(_insert_one(conn, item, text_hash))
            else:
                add_source(conn, story, feed_id=item.feed_id, guid=item.guid, url=item.url,
                           seen_at=item.fetched_at)
                ids.append(None)
        return ids + _store_run(conn, run)


def insert_item(engine: Engine, item: NewItem) -> int | None:
    """One item alone (the seed corpus import): `insert_items` of one."""
    return insert_items(engine, [item])[0]


def _story_urls(item: NewItem) -> list[str]:
    return [url for url in dict.fromkeys((item.page_canonical_url, item.canonical_url)) if url]


def _stored_stories(conn: Connection, new_items: Sequence[NewItem],
                    text_hashes: Sequence[str | None]) -> list[int | None]:
    """`find_story` of each item, as it finds it before any of them is stored: by canonical
    URL in items, else in item_sources, else by text hash; three statements per 500 values."""
    by_item, by_source = _url_holders(
        conn, [url for item in new_items for url in _story_urls(item)])
    found: list[int | None] = []
    for item in new_items:
        story_urls = _story_urls(item)
        in_items = [by_item[url] for url in story_urls if url in by_item]
        in_sources = [by_source[url] for url in story_urls if url in by_source]
        found.append(min(in_items or in_sources, default=None))
    text_hashes = [text_hash if story is None else None
                   for text_hash, story in zip(text_hashes, found, strict=True)]
    by_hash: dict[str, int] = {}
    for chunk in _chunks([text_hash for text_hash in text_hashes if text_hash]):
        by_hash.update(conn.execute(select(items.c.content_hash, func.min(items.c.id))
                                    .where(items.c.content_hash.in_(chunk))
                                    .group_by(items.c.content_hash)).all())
    return [story if text_hash is None else by_hash.get(text_hash)
            for story, text_hash in zip(found, text_hashes, strict=True)]


def _sharing_keys(new_items: Sequence[NewItem], text_hashes: Sequence[str | None]
                  ) -> list[bool]:
    """Whether each item shares a story URL, a text hash, its feed + GUID or its corpus file
    with another item of the batch (then it must see those stored before it)."""
    keys = []
    for item, text_hash in zip(new_items, text_hashes, strict=True):
        item_keys: set[tuple] = {("url", url) for url in _story_urls(item)}
        if text_hash:
            item_keys.add(("hash", text_hash))
        if item.feed_id is not None and item.guid is not None:
            item_keys.add(("guid", item.feed_id, item.guid))
        if item.corpus_file is not None:
            item_keys.add(("corpus", item.corpus_file))
        keys.append(item_keys)
    counts = Counter(key for item_keys in keys for key in item_keys)
    return [any(counts[key] > 1 for key in item_keys) for item_keys in keys]


def _store_run(conn: Connection, run: Sequence[tuple[NewItem, str | None]]
               ) -> list[int | None]:
    """New items that share nothing with each other, their stories not stored: in one SAVEPOINT,
    or one at a time if it is refused (another worker stored one of them meanwhile, or took
    one's feed + GUID or corpus file)."""
    if not run:
        return []
    try:
        with conn.begin_nested():
            return list(_store_new(conn, [item for item, _ in run]))
    except IntegrityError:
        return [_insert_one(conn, item, text_hash) for item, text_hash in run]


def _insert_one(conn: Connection, item: NewItem, text_hash: str | None) -> int | None:
    """`item` stored alone, in a SAVEPOINT, unless its story is (`text_hash`: its merge hash)."""
    story_urls = _story_urls(item)
    existing = find_story(conn, canonical_urls=story_urls, content_hash=text_hash)
    if existing is None:
        try:
            with conn.begin_nested():
                return _store_new(conn, [item])[0]
        except IntegrityError:
            # Stored meanwhile by another worker, or this (feed, guid) / corpus file is taken.
            existing = find_story(conn, canonical_urls=story_urls, content_hash=text_hash)
    if existing is not None:
        add_source(conn, existing, feed_id=item.feed_id, guid=item.guid, url=item.url,
                   seen_at=item.fetched_at)
    return None


def _store_new(conn: Connection, new: Sequence[NewItem]) -> list[int]:
    """New items, their stories not stored: their rows (one INSERT on PostgreSQL; one each on
    SQLite, which gives no order to a multi-row RETURNING), their near-duplicate bands in one
    INSERT and their sources in one (RETURNING makes SQLAlchemy send one multi-row INSERT, not
    one statement per row: on SQLite each row of an executemany is a step that gives the GIL
    away and waits to get it back); alert entries per item."""
    signatures = [item.signature or neardup.signature(item.text) for item in new]
    band_keys = [set(item.band_keys or neardup.band_keys(signature)) if signature else set()
                 for item, signature in zip(new, signatures, strict=True)]
    joins = clusters_to_join(conn, signatures, band_keys)
    rows = []
    for item, signature, join in zip(new, signatures, joins, strict=True):
        values = {name: getattr(item, name) for name in _COLUMNS}  # asdict() would deep-copy
        values.update(canonical_url=item.page_canonical_url or item.canonical_url,
                      signature=neardup.to_bytes(signature) if signature else None,
                      cluster=join if isinstance(join, int) else None)
        rows.append(values)
    ids = list(conn.execute(items.insert().returning(items.c.id, sort_by_parameter_order=True),
                            rows).scalars())
    # Near-duplicates of items of this same batch: their cluster is an id known only now.
    opened = [{"item": ids[n], "joined": ids[join.first]} for n, join in enumerate(joins)
              if isinstance(join, InBatch)]
    if opened:
        conn.execute(items.update().where(items.c.id == bindparam("item"))
                     .values(cluster=bindparam("joined")), opened)
    bands = [f"({key:d},{item_id:d})"
             for item_id, keys in zip(ids, band_keys, strict=True) for key in sorted(keys)]
    for start in range(0, len(bands), _BANDS_PER_INSERT):
        # Integers written in the statement: binding two parameters a row through SQLAlchemy
        # was the writer's largest Python cost (40 rows an item).
        conn.exec_driver_sql(f"INSERT INTO {item_bands.name} (band, item_id) VALUES "
                             + ",".join(bands[start:start + _BANDS_PER_INSERT]))
    conn.execute(item_sources.insert().returning(item_sources.c.id), [
        {"item_id": item_id, "feed_id": item.feed_id, "guid": item.guid, "url": item.url,
         "canonical_url": item.canonical_url, "seen_at": item.fetched_at}
        for item_id, item in zip(ids, new, strict=True)]).all()
    for item_id, item in zip(ids, new, strict=True):
        outbox.queue(conn, item_id, item.alerts, item.fetched_at)
    return ids


@storage_errors
def known_corpus_files(engine: Engine) -> set[str]:
    """The corpus files that stored items hold."""
    with engine.connect() as conn:
        return set(conn.execute(select(items.c.corpus_file)
                                .where(items.c.corpus_file.isnot(None))).scalars())
