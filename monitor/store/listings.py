"""Item listings: items newest first, one item with its sources and copies, the feeds to filter
by, a day's relevant items, every item for an export. Does I/O (read only).

In: an `Engine`, an `ItemSelection` (filters and a keyset cursor) or an id. Out: plain dicts
(dates as ISO strings, booleans, lists), streamed where a listing may be long; each face picks
the keys it shows. A listed item has the columns of `LISTED_COLUMNS` (see `listed_item`).
Listings are keyset-paginated in one of three orders (`SORTS`): newest kept first (by id, the
default), newest published first (the publication time, or the time kept when the feed gave
none: `schema.publication_time`), or best score first; ties go to the newer id. The next page
starts after the last item shown (``before``, its id), so a page deep in the list costs what
the first one costs. ``since``/``until`` filter on the day an item was kept, ``published_since``/
``published_until`` on the day of its publication time (UTC days, inclusive).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import Engine, Select, Text, and_, case, cast, func, or_, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.report.export import FIELDS as EXPORT_FIELDS
from monitor.store.engine import storage_errors
from monitor.store.schema import feeds, item_sources, items, publication_time
from monitor.textsearch import EXCERPT_CHARS

TextPart = Literal["excerpt", "full"] | None  # what of the text a listing carries
Sort = Literal["kept", "published", "score"]
SORTS: tuple[Sort, ...] = ("published", "kept", "score")
BATCH = 500  # rows fetched at a time by a streamed listing

ITEMS_WITH_FEED = items.outerjoin(feeds, feeds.c.id == items.c.feed_id)
LISTED_COLUMNS = (
    items.c.id, items.c.url, items.c.title, items.c.feed_id, feeds.c.name.label("feed"),
    items.c.published, items.c.fetched_at, items.c.lang, items.c.relevant, items.c.score,
    items.c.topics, items.c.corpus_file, items.c.text_source, items.c.text_error,
    publication_time.label("published_at"),
)


@dataclass(frozen=True)
class ItemSelection:
    """Which items a listing shows: each filter set narrows it; ``before`` is the keyset cursor
    (items with a smaller id)."""

    relevant: bool | None = None
    topic: str | None = None
    feed: int | None = None
    lang: str | None = None
    since: date | None = None  # first day kept (fetched_at, UTC), inclusive
    until: date | None = None  # last day kept, inclusive
    published_since: date | None = None  # first day of the publication time, inclusive
    published_until: date | None = None  # its last day, inclusive
    sort: Sort = "kept"
    before: int | None = None


def listed_item(row: Any) -> dict:
    """A listing row as plain data; ``text`` (an excerpt or the full text) when selected."""
    out = {
        "id": row["id"], "url": row["url"], "title": row["title"], "feed_id": row["feed_id"],
        "feed": row["feed"], "published": iso(row["published"]),
        "fetched_at": iso(row["fetched_at"]), "published_at": iso(row["published_at"]),
        "lang": row["lang"], "relevant": bool(row["relevant"]), "score": row["score"],
        "topics": list(row["topics"] or []), "corpus_file": row["corpus_file"],
        "text_source": row["text_source"], "text_error": row["text_error"],
    }
    if "text" in row:
        out["text"] = row["text"] or ""
    return out


def like_pattern(text: str) -> str:
    """`text` for a LIKE ... ESCAPE '\\' pattern: its own %, _ and \\ taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def selection_conditions(selection: ItemSelection) -> list[ColumnElement]:
    """The WHERE terms of the filters (search and paging aside)."""
    conditions: list[ColumnElement] = []
    if selection.relevant is not None:
        conditions.append(items.c.relevant.is_(selection.relevant))
    if selection.topic:
        # topics is a JSON list stored as text ('["ai", "cyber"]'): match the quoted name.
        quoted = like_pattern(json.dumps(selection.topic))
        conditions.append(cast(items.c.topics, Text).like(f"%{quoted}%", escape="\\"))
    if selection.feed is not None:
        conditions.append(items.c.feed_id == selection.feed)
    if selection.lang:
        conditions.append(items.c.lang == selection.lang)
    if selection.since:
        conditions.append(items.c.fetched_at >= day_start(selection.since))
    if selection.until:
        conditions.append(items.c.fetched_at < day_start(selection.until + timedelta(days=1)))
    if selection.published_since:
        conditions.append(publication_time >= day_start(selection.published_since))
    if selection.published_until:
        conditions.append(publication_time < day_start(selection.published_until
                                                   + timedelta(days=1)))
    return conditions


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def newest_items_select(
    selection: ItemSelection, *, limit: int | None, text: TextPart = "excerpt",
    extra: list[ColumnElement] = (), source: Any = None, order_column: Any = None,
) -> Select:
    """In the selection's order, at most `limit` rows (None: all) of `LISTED_COLUMNS` and the
    `text` part.

    ``extra`` adds conditions (a search); ``source`` replaces the FROM clause (items
    left-joined to feeds) and ``order_column`` the column equal to ``items.id`` that orders the
    listing and takes the cursor (a full-text index's rowid, so the index drives the scan).
    """
    order = order_column if order_column is not None else items.c.id
    keys = [*_SORT_KEYS[selection.sort], order]
    conditions = selection_conditions(selection) + list(extra)
    if selection.before is not None:
        conditions.append(_after_cursor(keys, selection.before))
    columns: list[Any] = list(LISTED_COLUMNS)
    if text == "full":
        columns.append(items.c.text)
    elif text == "excerpt":
        columns.append(func.substr(items.c.text, 1, EXCERPT_CHARS).label("text"))
    query = select(*columns).select_from(source if source is not None else ITEMS_WITH_FEED)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(*[key.desc() for key in keys])
    return query.limit(limit) if limit is not None else query


_SORT_KEYS: dict[str, tuple[Any, ...]] = {
    "kept": (), "published": (publication_time,), "score": (items.c.score,)}


def _after_cursor(keys: list[Any], before: int) -> ColumnElement:
    """Rows after item `before` in the order of `keys` (descending; the last one the id): the
    cursor is an id, its sort value read from its row, so one link form pages every order.
    Written ``key <= v AND (key < v OR id < before)``, a range an index can start from (SQLite
    scans the whole index for the row value ``(key, id) < (v, before)``)."""
    key, order = keys[0], keys[-1]
    if len(keys) == 1:
        return order < before
    value = select(key).where(items.c.id == before).scalar_subquery()
    return and_(key <= value, or_(key < value, order < before))


@storage_errors
def previous_page(engine: Engine, selection: ItemSelection, first: int, *, limit: int,
                  extra: list[ColumnElement] = ()) -> int | None:
    """The cursor (``before``) of the page of `limit` items that ends just above item `first`
    in the selection's order (`extra`: more conditions, a search); None when that page is the
    first one."""
    keys = [*_SORT_KEYS[selection.sort], items.c.id]
    key, value = keys[0], select(keys[0]).where(items.c.id == first).scalar_subquery()
    above = (items.c.id > first if len(keys) == 1
             else and_(key >= value, or_(key > value, items.c.id > first)))
    query = (select(items.c.id).where(and_(*selection_conditions(selection), *extra, above))
             .order_by(*[k.asc() for k in keys]).limit(limit + 1))
    with engine.connect() as conn:
        ids = conn.execute(query).scalars().all()
    return ids[limit] if len(ids) > limit else None


@storage_errors
def count_selected(engine: Engine, selection: ItemSelection, *, cap: int | None = None) -> int:
    """How many items the selection holds (its cursor aside); with `cap`, counting stops there
    (a result of `cap` means "at least that many")."""
    conditions = selection_conditions(selection)
    query = select(items.c.id)
    if conditions:
        query = query.where(and_(*conditions))
    if cap is not None:
        query = query.limit(cap)
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()


@storage_errors
def newest_items(engine: Engine, selection: ItemSelection = ItemSelection(), *,
                 limit: int | None = None, text: TextPart = "excerpt") -> Iterator[dict]:
    """The selected items in the selection's order (by default newest kept first), at most
    `limit` (None: all, streamed), each with the `text` part asked for: its first
    `EXCERPT_CHARS` characters, all of it, or none."""
    query = newest_items_select(selection, limit=limit, text=text)
    with engine.connect() as conn:
        if limit is None:
            conn = conn.execution_options(stream_results=True, yield_per=BATCH)
        for row in conn.execute(query):
            yield listed_item(row._mapping)


@storage_errors
def item_by_id(engine: Engine, item_id: int) -> dict | None:
    """Every stored column of one item (but its near-duplicate signature, bytes), with its
    feed's name and URL; None if there is none."""
    query = (select(items, feeds.c.name.label("feed"), feeds.c.url.label("feed_url"))
             .select_from(ITEMS_WITH_FEED).where(items.c.id == item_id))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    out = dict(row._mapping)
    del out["signature"]
    for key in ("published", "fetched_at"):
        out[key] = iso(out[key])
    out["relevant"] = bool(out["relevant"])
    out["topics"] = list(out["topics"] or [])
    out["matches"] = list(out["matches"] or [])
    return out


@storage_errors
def story_sources(engine: Engine, item: dict) -> list[dict]:
    """Every feed entry that brought this very item (item_sources; the item's own entry
    first, then the others, first seen first): feed_id, feed, guid, url, seen_at."""
    query = (select(item_sources.c.feed_id, feeds.c.name.label("feed"), item_sources.c.guid,
                    item_sources.c.url, item_sources.c.seen_at)
             .select_from(item_sources.outerjoin(feeds, feeds.c.id == item_sources.c.feed_id))
             .where(item_sources.c.item_id == item["id"])
             .order_by(item_sources.c.seen_at, item_sources.c.id))
    with engine.connect() as conn:
        rows = [{"feed_id": r.feed_id, "feed": r.feed, "guid": r.guid, "url": r.url,
                 "seen_at": iso(r.seen_at)} for r in conn.execute(query)]
    return sorted(rows, key=lambda r: not _own_entry(r, item))


def other_sources(engine: Engine, item: dict) -> list[dict]:
    """The other feed entries that brought this very item, first seen first."""
    # the item's own entry is shown as its source, not as another publisher
    return [r for r in story_sources(engine, item) if not _own_entry(r, item)]


def _own_entry(source: dict, item: dict) -> bool:
    return (source["feed_id"], source["guid"]) == (item["feed_id"], item["guid"])


@storage_errors
def copies_elsewhere(engine: Engine, item: dict, *, limit: int = 20) -> list[dict]:
    """Other items of the same story, oldest first: near-duplicates (same cluster) and items of
    other feeds with exactly the same text (same content hash, stored before stories were
    merged, or too short to merge). ``relation`` says which."""
    near = (items.c.cluster == item["cluster"]) if item.get("cluster") is not None else None
    same_text = None
    if (item.get("text") or "").strip():
        same_text = and_(items.c.content_hash == item["content_hash"],
                         items.c.feed_id.is_distinct_from(item["feed_id"]))
    terms = [t for t in (near, same_text) if t is not None]
    if not terms:
        return []
    relation = case((items.c.content_hash == item["content_hash"], "same text"),
                    else_="near-duplicate")
    query = (select(items.c.id, items.c.title, items.c.url, items.c.published,
                    items.c.fetched_at, feeds.c.name.label("feed"), relation.label("relation"))
             .select_from(ITEMS_WITH_FEED).where(or_(*terms), items.c.id != item["id"])
             .order_by(items.c.id).limit(limit))
    with engine.connect() as conn:
        return [{"id": r.id, "title": r.title, "url": r.url, "feed": r.feed,
                 "published": iso(r.published), "fetched_at": iso(r.fetched_at),
                 "relation": r.relation} for r in conn.execute(query)]


@storage_errors
def feed_choices(engine: Engine) -> list[dict]:
    """Every feed's id, name and language, by name (for a filter form)."""
    query = select(feeds.c.id, feeds.c.name, feeds.c.lang).order_by(feeds.c.name, feeds.c.id)
    with engine.connect() as conn:
        return [{"id": r.id, "name": r.name, "lang": r.lang} for r in conn.execute(query)]


@storage_errors
def feeds_named(engine: Engine, reference: str) -> list[dict]:
    """The feeds whose id, URL or name (ASCII case aside) is `reference`: id, name, url."""
    condition = or_(feeds.c.url == reference, func.lower(feeds.c.name) == reference.lower())
    if reference.isdigit() and len(reference) < 12:
        condition = or_(condition, feeds.c.id == int(reference))
    query = select(feeds.c.id, feeds.c.name, feeds.c.url).where(condition).order_by(feeds.c.id)
    with engine.connect() as conn:
        return [{"id": r.id, "name": r.name, "url": r.url} for r in conn.execute(query)]


@storage_errors
def relevant_items_kept_on(engine: Engine, day: date) -> list[dict]:
    """The relevant items kept on `day` (UTC), best score first: id, title, url, feed,
    published, lang, score, topics (the daily digest's rows)."""
    start = day_start(day)
    query = (select(items.c.id, items.c.title, items.c.url, feeds.c.name.label("feed"),
                    items.c.published, items.c.lang, items.c.score, items.c.topics)
             .select_from(ITEMS_WITH_FEED)
             .where(items.c.relevant.is_(True), items.c.fetched_at >= start,
                    items.c.fetched_at < start + timedelta(days=1))
             .order_by(items.c.score.desc(), items.c.id))
    with engine.connect() as conn:
        return [{"id": r.id, "title": r.title, "url": r.url, "feed": r.feed,
                 "published": iso(r.published), "lang": r.lang, "score": r.score,
                 "topics": list(r.topics or [])} for r in conn.execute(query)]


_EXPORTED = {**{column.name: column for column in items.c},
             "feed": feeds.c.name.label("feed"), "feed_url": feeds.c.url.label("feed_url")}


@storage_errors
def items_to_export(engine: Engine, *, relevant: bool = False,
                    since: datetime | None = None, selection: ItemSelection | None = None,
                    extra: list[ColumnElement] = ()) -> Iterator[dict]:
    """Stored items as dicts with the export's fields (`report.export.FIELDS`), oldest first,
    streamed (a server-side cursor on PostgreSQL, `BATCH` rows at a time); only those of
    `selection` (its cursor aside) and of the `extra` conditions (a search), when given."""
    query = (select(*[_EXPORTED[field] for field in EXPORT_FIELDS])
             .select_from(ITEMS_WITH_FEED).order_by(items.c.id))
    conditions = [*selection_conditions(selection or ItemSelection()), *extra]
    if conditions:
        query = query.where(and_(*conditions))
    if relevant:
        query = query.where(items.c.relevant.is_(True))
    if since is not None:
        query = query.where(items.c.fetched_at >= since)
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(query)
        for row in result:
            out = dict(row._mapping)
            for key in ("published", "fetched_at"):
                out[key] = iso(out[key])
            out["relevant"] = bool(out["relevant"])
            out["topics"] = list(out["topics"] or [])
            yield out


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
