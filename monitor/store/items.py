"""Item rows, the write side: is an entry new, is its story stored, store a feed's new items.

In: `NewItem`s, GUIDs and canonical URLs. Out: item ids, and which entries and stories are
stored already. Does I/O. (Listings and totals, the read side, are in `listings.py`,
`search.py` and `totals.py`.)

One story is stored once. An item records every feed entry that brought it (`item_sources`);
an entry whose story is already stored (same canonical URL, the entry's or the page's, or the
same text) adds a source to that item instead of a new item. The text hash merges only texts
of at least ``neardup.MIN_MERGE_WORDS`` words: short summaries (and the empty text) are shared
by different stories. Near-duplicates (a dispatch reprinted with edits) stay separate items but
share `items.cluster`, found through the LSH bands of `item_bands` (monitor/neardup.py), all
in the database so that every worker process sees every other's items.

A batch of a feed's new items is stored in one transaction, each in a SAVEPOINT: the unique
keys (feed + guid, canonical URL, corpus file) stay the final guard when two workers race, and
one item refused by them costs only itself. A new item's alert entries (`NewItem.alerts`) are
queued in the outbox in its SAVEPOINT: stored together, or neither.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import IntegrityError

from monitor import neardup
from monitor.identity import canonical_url as canonical_form
from monitor.store import outbox
from monitor.store.engine import storage_errors
from monitor.store.schema import item_bands, item_sources, items

_CANDIDATES = 200  # near-duplicate candidates verified at most (the newest), per item
_IN_CHUNK = 500  # values per IN (...) list


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
    # The alerts to announce it (queued in the outbox with it), if it is stored as a new item.
    alerts: tuple[str, ...] = ()


@storage_errors
def known_guids(engine: Engine, feed_id: int, guids: Sequence[str]) -> set[str]:
    """Which of these entries of a feed are already stored (as a source of some item)."""
    found: set[str] = set()
    with engine.connect() as conn:
        for chunk in _chunks(guids):
            found.update(conn.execute(select(item_sources.c.guid).where(
                item_sources.c.feed_id == feed_id, item_sources.c.guid.in_(chunk))).scalars())
    return found


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
    found: dict[str, int] = {}
    with engine.connect() as conn:
        for chunk in _chunks([url for url in urls if url]):
            found.update(conn.execute(select(items.c.canonical_url, items.c.id)
                                      .where(items.c.canonical_url.in_(chunk))).all())
            rest = [url for url in chunk if url not in found]
            if rest:
                found.update(conn.execute(
                    select(item_sources.c.canonical_url, func.min(item_sources.c.item_id))
                    .where(item_sources.c.canonical_url.in_(rest))
                    .group_by(item_sources.c.canonical_url)).all())
    return found


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
    """Store a batch of new items in one transaction, one SAVEPOINT each. Out: each item's new id,
    or None when its story was stored already (its source is then added to that item)."""
    with engine.begin() as conn:
        return [_insert_one(conn, item) for item in new_items]


def insert_item(engine: Engine, item: NewItem) -> int | None:
    """One item alone (the seed corpus import): `insert_items` of one."""
    return insert_items(engine, [item])[0]


def _insert_one(conn: Connection, item: NewItem) -> int | None:
    story_urls = [item.page_canonical_url, item.canonical_url]
    text_hash = neardup.merge_hash(item.text, item.content_hash)
    existing = find_story(conn, canonical_urls=story_urls, content_hash=text_hash)
    if existing is None:
        try:
            with conn.begin_nested():
                return _store_new(conn, item)
        except IntegrityError:
            # Stored meanwhile by another worker, or this (feed, guid) / corpus file is taken.
            existing = find_story(conn, canonical_urls=story_urls, content_hash=text_hash)
    if existing is not None:
        add_source(conn, existing, feed_id=item.feed_id, guid=item.guid, url=item.url,
                   seen_at=item.fetched_at)
    return None


def _store_new(conn: Connection, item: NewItem) -> int:
    values = asdict(item)
    del values["page_canonical_url"], values["alerts"]
    signature = item.signature if item.signature is not None else neardup.signature(item.text)
    values.update(canonical_url=item.page_canonical_url or item.canonical_url,
                  signature=neardup.to_bytes(signature) if signature else None,
                  cluster=_cluster_to_join(conn, signature) if signature else None)
    item_id = conn.execute(items.insert().values(**values)).inserted_primary_key[0]
    conn.execute(item_sources.insert().values(
        item_id=item_id, feed_id=item.feed_id, guid=item.guid, url=item.url,
        canonical_url=item.canonical_url, seen_at=item.fetched_at))
    if signature:
        conn.execute(item_bands.insert(), [{"band": key, "item_id": item_id}
                                           for key in set(neardup.band_keys(signature))])
    outbox.queue(conn, item_id, item.alerts, item.fetched_at)
    return item_id


def _cluster_to_join(conn: Connection, signature: neardup.Signature) -> int | None:
    """The cluster of the stored item most like this text (estimated Jaccard at least
    neardup.THRESHOLD among the items sharing a band with it), or None. A candidate alone
    until now opens its cluster under its own id."""
    candidates = (select(item_bands.c.item_id)
                  .where(item_bands.c.band.in_(neardup.band_keys(signature)))
                  .distinct().order_by(item_bands.c.item_id.desc()).limit(_CANDIDATES))
    rows = conn.execute(select(items.c.id, items.c.cluster, items.c.signature)
                        .where(items.c.id.in_(candidates.scalar_subquery()))).all()
    scored = [(neardup.similarity(signature, neardup.from_bytes(row.signature)), -row.id, row)
              for row in rows if row.signature]
    best = max((s for s in scored if s[0] >= neardup.THRESHOLD), default=None,
               key=lambda s: s[:2])
    if best is None:
        return None
    row = best[2]
    if row.cluster is None:
        conn.execute(items.update().where(items.c.id == row.id, items.c.cluster.is_(None))
                     .values(cluster=row.id))
        return row.id
    return row.cluster


@storage_errors
def known_corpus_files(engine: Engine) -> set[str]:
    """The corpus files that stored items hold."""
    with engine.connect() as conn:
        return set(conn.execute(select(items.c.corpus_file)
                                .where(items.c.corpus_file.isnot(None))).scalars())
