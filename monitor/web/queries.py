"""The inspector's read queries against the store's tables. Does I/O (read only).

In: an open `Connection` and `ItemFilters` or ids. Out: plain dicts and lists shaped for the
pages and their JSON twins. Listings are keyset-paginated: newest first by id, the next page
starts below the last id shown (``before``), so a page deep in the list costs what the first
one costs. Dates filter on when an item was kept (``fetched_at``, UTC days).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, Select, Text, and_, case, cast, func, literal, or_, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.schema import feeds, item_sources, items, polls
from monitor.web.filters import ItemFilters

EXCERPT_CHARS = 280

ITEMS_WITH_FEED = items.outerjoin(feeds, feeds.c.id == items.c.feed_id)
LIST_COLUMNS = (
    items.c.id, items.c.url, items.c.title, items.c.feed_id, feeds.c.name.label("feed"),
    items.c.published, items.c.fetched_at, items.c.lang, items.c.relevant, items.c.score,
    items.c.topics, items.c.text_source, items.c.text_error,
)


def like_pattern(text: str) -> str:
    """`text` for a LIKE ... ESCAPE '\\' pattern: its own %, _ and \\ taken literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def filter_conditions(filters: ItemFilters) -> list[ColumnElement]:
    """The WHERE terms of the filters (search and paging aside)."""
    conditions: list[ColumnElement] = []
    if filters.relevant is not None:
        conditions.append(items.c.relevant.is_(filters.relevant))
    if filters.topic:
        # topics is a JSON list stored as text ('["ai", "cyber"]'): match the quoted name.
        quoted = like_pattern(json.dumps(filters.topic))
        conditions.append(cast(items.c.topics, Text).like(f"%{quoted}%", escape="\\"))
    if filters.feed is not None:
        conditions.append(items.c.feed_id == filters.feed)
    if filters.lang:
        conditions.append(items.c.lang == filters.lang)
    if filters.since:
        conditions.append(items.c.fetched_at >= day_start(filters.since))
    if filters.until:
        conditions.append(items.c.fetched_at < day_start(filters.until + timedelta(days=1)))
    return conditions


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=UTC)


def items_select(
    filters: ItemFilters, *, extra: list[ColumnElement] = (), text_column: Any = None,
    source: Any = None, order_column: Any = None,
) -> Select:
    """Newest-first keyset page: at most ``limit + 1`` rows (the extra one says "there is more").

    ``text_column`` is what to select as ``text`` (default: the first characters, as an
    excerpt); ``extra`` adds conditions (a search); ``source`` replaces the FROM clause (items
    left-joined to feeds) and ``order_column`` the column equal to ``items.id`` that orders the
    page and takes the cursor (a full-text index's rowid, so the index drives the scan).
    """
    text = text_column if text_column is not None else func.substr(items.c.text, 1, EXCERPT_CHARS)
    order = order_column if order_column is not None else items.c.id
    conditions = filter_conditions(filters) + list(extra)
    if filters.before is not None:
        conditions.append(order < filters.before)
    query = (select(*LIST_COLUMNS, text.label("text"))
             .select_from(source if source is not None else ITEMS_WITH_FEED))
    if conditions:
        query = query.where(and_(*conditions))
    return query.order_by(order.desc()).limit(filters.limit + 1)


def list_items(conn: Connection, filters: ItemFilters) -> list[dict]:
    """One page of items (``limit + 1`` rows at most), newest first."""
    return [item_row(row._mapping) for row in conn.execute(items_select(filters))]


def item_row(row) -> dict:
    """A listing row as plain data; ``text`` (an excerpt or the full text) is kept as is."""
    return {
        "id": row["id"], "url": row["url"], "title": row["title"], "feed_id": row["feed_id"],
        "feed": row["feed"], "published": iso(row["published"]),
        "fetched_at": iso(row["fetched_at"]), "lang": row["lang"],
        "relevant": bool(row["relevant"]), "score": row["score"],
        "topics": list(row["topics"] or []), "text_source": row["text_source"],
        "text_error": row["text_error"], "text": row["text"] or "",
    }


def get_item(conn: Connection, item_id: int) -> dict | None:
    """Every stored column of one item, with its feed's name and URL; None if there is none."""
    query = (select(items, feeds.c.name.label("feed"), feeds.c.url.label("feed_url"))
             .select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
             .where(items.c.id == item_id))
    row = conn.execute(query).first()
    if row is None:
        return None
    out = dict(row._mapping)
    for key in ("published", "fetched_at"):
        out[key] = iso(out[key])
    out["relevant"] = bool(out["relevant"])
    out["topics"] = list(out["topics"] or [])
    out["matches"] = list(out["matches"] or [])
    return out


def other_sources(conn: Connection, item: dict) -> list[dict]:
    """The other feed entries that brought this very item (item_sources), first seen first."""
    query = (select(item_sources.c.feed_id, feeds.c.name.label("feed"), item_sources.c.guid,
                    item_sources.c.url, item_sources.c.seen_at)
             .select_from(item_sources.outerjoin(feeds, feeds.c.id == item_sources.c.feed_id))
             .where(item_sources.c.item_id == item["id"])
             .order_by(item_sources.c.seen_at, item_sources.c.id))
    rows = [{"feed_id": r.feed_id, "feed": r.feed, "guid": r.guid, "url": r.url,
             "seen_at": iso(r.seen_at)} for r in conn.execute(query)]
    # the item's own entry is shown as its source, not as another publisher
    return [r for r in rows if (r["feed_id"], r["guid"]) != (item["feed_id"], item["guid"])]


def copies_elsewhere(conn: Connection, item: dict, *, limit: int = 20) -> list[dict]:
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
             .select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
             .where(or_(*terms), items.c.id != item["id"])
             .order_by(items.c.id).limit(limit))
    return [{"id": r.id, "title": r.title, "url": r.url, "feed": r.feed,
             "published": iso(r.published), "fetched_at": iso(r.fetched_at),
             "relation": r.relation} for r in conn.execute(query)]


def feed_choices(conn: Connection) -> list[dict]:
    """Every feed's id, name and language, by name (for the filter form)."""
    query = select(feeds.c.id, feeds.c.name, feeds.c.lang).order_by(feeds.c.name, feeds.c.id)
    return [{"id": r.id, "name": r.name, "lang": r.lang} for r in conn.execute(query)]


def day_expression(conn: Connection, column) -> ColumnElement:
    """The UTC calendar day of a stored timestamp, per backend."""
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def daily_counts(conn: Connection, first_day: date) -> dict[int | None, dict[str, list[int]]]:
    """Items and relevant items kept per feed and UTC day since `first_day`.

    Out: ``{feed_id: {"YYYY-MM-DD": [items, relevant]}}`` (days without items are absent).
    """
    day = day_expression(conn, items.c.fetched_at).label("day")
    query = (select(items.c.feed_id, day, func.count().label("n"),
                    func.sum(case((items.c.relevant.is_(True), 1), else_=0)).label("r"))
             .where(items.c.fetched_at >= day_start(first_day))
             .group_by(day, items.c.feed_id))  # day first: a (fetched_at, …) index serves it
    out: dict[int | None, dict[str, list[int]]] = {}
    for row in conn.execute(query):
        key = row.day.isoformat() if isinstance(row.day, date) else str(row.day)[:10]
        out.setdefault(row.feed_id, {})[key] = [int(row.n), int(row.r or 0)]
    return out


def poll_duration(conn: Connection) -> ColumnElement:
    """Seconds between a poll's start and end, per backend."""
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", polls.c.finished_at - polls.c.started_at)
    return (func.julianday(polls.c.finished_at) - func.julianday(polls.c.started_at)) * 86400.0


def metric_figures(conn: Connection, *, now: datetime, buckets: tuple[float, ...]) -> dict:
    """Totals for /metrics: polls by status, errors by reason, items, feeds, due feeds and a
    histogram of poll durations (counts at or under each bucket bound, sum and count)."""
    polls_by_status = dict(conn.execute(
        select(polls.c.status, func.count()).group_by(polls.c.status)).all())
    errors_by_reason = dict(conn.execute(
        select(polls.c.error_reason, func.count()).where(polls.c.status == "error")
        .group_by(polls.c.error_reason)).all())
    duration = poll_duration(conn)
    histogram = conn.execute(select(
        *[func.sum(case((duration <= bound, 1), else_=0)) for bound in buckets],
        func.coalesce(func.sum(duration), 0.0), func.count(),
        func.coalesce(func.sum(polls.c.page_errors), 0),
    ).select_from(polls)).one()
    active = and_(feeds.c.enabled.is_(True), feeds.c.in_config.is_(True))
    free = (feeds.c.lease_until.is_(None)) | (feeds.c.lease_until < now)
    feed_row = conn.execute(select(
        func.count(),
        func.sum(case((active, 1), else_=0)),
        func.sum(case((and_(active, feeds.c.next_due <= now, free), 1), else_=0)),
        func.sum(case((and_(active, feeds.c.error_streak > 0), 1), else_=0)),
        func.max(feeds.c.last_success_at),
    ).select_from(feeds)).one()
    item_count = conn.execute(select(func.count()).select_from(items)).scalar_one()
    relevant = conn.execute(select(func.count()).select_from(items)
                            .where(items.c.relevant.is_(True))).scalar_one()
    last_success = feed_row[4]
    return {
        "polls_by_status": {k: int(v) for k, v in polls_by_status.items()},
        "errors_by_reason": {(k or "unknown"): int(v) for k, v in errors_by_reason.items()},
        "page_errors": int(histogram[-1] or 0),
        "duration_buckets": [int(v or 0) for v in histogram[:len(buckets)]],
        "duration_sum": float(histogram[len(buckets)] or 0.0),
        "duration_count": int(histogram[len(buckets) + 1] or 0),
        "feeds": int(feed_row[0] or 0), "active_feeds": int(feed_row[1] or 0),
        "due_feeds": int(feed_row[2] or 0), "failing_feeds": int(feed_row[3] or 0),
        "last_success": _aware(last_success),
        "items": int(item_count), "relevant_items": int(relevant),
    }


def health_figures(conn: Connection) -> dict:
    """Is the database answering, and when did a poll last succeed (aware UTC or None)."""
    conn.execute(select(literal(1))).scalar_one()
    last = conn.execute(select(func.max(feeds.c.last_success_at))).scalar_one()
    return {"last_success": _aware(last)}


def _aware(value) -> datetime | None:
    """max() over a UTC column comes back as text on SQLite: make it an aware datetime."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
