"""Item rows: is an entry new, store one item, list and show items, totals. Does I/O.

In: `NewItem`s and queries. Out: item ids and plain dicts shaped for the CLI's JSON. An item is
stored in its own transaction; the unique keys (feed + guid, canonical URL, corpus file) make a
second insert of the same story a no-op, whoever tries it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, func, or_, select
from sqlalchemy.exc import IntegrityError

from monitor.store.schema import feeds, items, polls, storable  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class NewItem:
    feed_id: int | None
    guid: str | None
    url: str | None
    canonical_url: str | None
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


def is_known(conn: Connection, *, feed_id: int, guid: str, canonical_url: str | None) -> bool:
    """Has this entry (by guid in this feed, or by canonical URL anywhere) been stored?"""
    condition = (items.c.feed_id == feed_id) & (items.c.guid == guid)
    if canonical_url:
        condition = or_(condition, items.c.canonical_url == canonical_url)
    return conn.execute(select(items.c.id).where(condition).limit(1)).first() is not None


def insert_item(engine: Engine, item: NewItem) -> int | None:
    """Store one item in its own transaction; None if the same story is already stored.
    Text with NUL characters or lone surrogates is cleaned on the way in (see schema.py)."""
    values = asdict(item)
    try:
        with engine.begin() as conn:
            return conn.execute(items.insert().values(**values)).inserted_primary_key[0]
    except IntegrityError:
        return None


def known_corpus_files(conn: Connection) -> set[str]:
    return set(conn.execute(select(items.c.corpus_file).where(items.c.corpus_file.isnot(None)))
               .scalars())


_LIST_COLUMNS = (items.c.id, items.c.url, items.c.title, feeds.c.name.label("feed"),
                 items.c.published, items.c.lang, items.c.relevant, items.c.score,
                 items.c.topics, items.c.corpus_file)


def list_items(
    engine: Engine, *, relevant: bool | None = None, limit: int | None = None,
    with_text: bool = False,
) -> Iterator[dict]:
    """Stored items, newest first (by id: the order they were stored in), streamed."""
    columns = list(_LIST_COLUMNS) + ([items.c.text] if with_text else [])
    query = select(*columns).select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
    if relevant is not None:
        query = query.where(items.c.relevant.is_(relevant))
    query = query.order_by(items.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        for row in conn.execution_options(stream_results=True, yield_per=500).execute(query):
            yield _item_dict(row._mapping)


def get_item(engine: Engine, item_id: int) -> dict | None:
    query = (select(items, feeds.c.name.label("feed"), feeds.c.url.label("feed_url"))
             .select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
             .where(items.c.id == item_id))
    with engine.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None
    mapping = dict(row._mapping)
    out = _item_dict(mapping)
    for key in ("guid", "canonical_url", "summary", "text", "text_source", "text_error",
                "text_error_message", "content_hash", "matches", "rules_version", "feed_url"):
        out[key] = mapping[key]
    out["fetched_at"] = mapping["fetched_at"].isoformat()
    return out


def _item_dict(row) -> dict:
    out = {
        "id": row["id"], "url": row["url"], "title": row["title"], "feed": row["feed"],
        "published": row["published"].isoformat() if row["published"] else None,
        "lang": row["lang"], "relevant": bool(row["relevant"]), "score": row["score"],
        "topics": list(row["topics"] or []), "corpus_file": row["corpus_file"],
    }
    if "text" in row:
        out["text"] = row["text"]
    return out


def totals(engine: Engine) -> dict:
    with engine.connect() as conn:
        feed_count = conn.execute(select(func.count()).select_from(feeds)).scalar_one()
        active = conn.execute(select(func.count()).select_from(feeds).where(
            feeds.c.enabled.is_(True) & feeds.c.in_config.is_(True))).scalar_one()
        item_count = conn.execute(select(func.count()).select_from(items)).scalar_one()
        relevant = conn.execute(select(func.count()).select_from(items)
                                .where(items.c.relevant.is_(True))).scalar_one()
        poll_count = conn.execute(select(func.count()).select_from(polls)).scalar_one()
        errors = conn.execute(select(func.count()).select_from(polls)
                              .where(polls.c.status == "error")).scalar_one()
        page_errors = conn.execute(select(func.coalesce(func.sum(polls.c.page_errors), 0))
                                   ).scalar_one()
        by_reason = dict(conn.execute(
            select(polls.c.error_reason, func.count()).where(polls.c.status == "error")
            .group_by(polls.c.error_reason)).all())
        last_poll = conn.execute(select(func.max(polls.c.finished_at))).scalar_one()
    return {
        "feeds": feed_count, "active_feeds": active, "items": item_count,
        "relevant_items": relevant, "polls": poll_count, "errors": errors,
        "page_errors": int(page_errors), "errors_by_reason": by_reason,
        "last_poll": last_poll.isoformat() if isinstance(last_poll, datetime) else last_poll,
    }
