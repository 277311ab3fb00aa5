"""The database schema (SQLAlchemy Core): feeds, items, polls, corpus numbers.

- feeds: one row per configured feed URL, with its schedule state (next due, error streak,
  lease), its HTTP validators (ETag, Last-Modified, body hash) and its last outcome.
- items: one row per story, with the extracted text and the verdict of the rules (relevant,
  score, topics, matches, rules version), its corpus file when relevant, its near-duplicate
  cluster (the id of the cluster's first item; NULL: alone) and MinHash signature.
- item_sources: every feed entry that brought an item (the first one included): the same story
  in two feeds is one item with two sources.
- item_bands: the LSH band keys of each item's signature (monitor/neardup.py), to find the
  candidates of a near-duplicate by index.
- polls: one row per poll of a feed: status, HTTP status, bytes, new items, error reason, and
  the worker that made it.
- corpus_numbers: the corpus file numbers handed out, one per item key (the database decides,
  so workers on several machines never take the same number).

This module describes the tables as the code uses them; the database itself is made and
upgraded by the Alembic revisions in `migrations/` (`migrate.py` runs them), which also add the
backend-specific full-text index (SQLite FTS5 table, PostgreSQL tsvector column) that is not
described here. `tests/test_migrations.py` checks that the two agree.

Every text and JSON column goes through `storable`: NUL characters (PostgreSQL refuses them)
are dropped and lone surrogates replaced, whatever path the value comes by.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.types import TypeDecorator


def storable(value):
    """Text every backend accepts: no NUL (PostgreSQL refuses it), no lone surrogate."""
    if isinstance(value, str):
        if "\x00" in value:
            value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
    elif isinstance(value, list | tuple):
        return [storable(v) for v in value]
    elif isinstance(value, dict):
        return {storable(k): storable(v) for k, v in value.items()}
    return value


class CleanText(TypeDecorator):
    """TEXT, cleaned by `storable` on the way in."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return storable(value)


class CleanString(TypeDecorator):
    """VARCHAR(n), cleaned by `storable` on the way in."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return storable(value)


class CleanJSON(TypeDecorator):
    """JSON whose strings (keys and values) are cleaned by `storable` on the way in."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return storable(value)


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every backend (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = MetaData()

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", CleanText, nullable=False, unique=True),  # as configured in feeds.yaml
    # Where the feed is fetched from when a permanent redirect (301/308) moved it; NULL: `url`.
    Column("fetch_url", CleanText),
    Column("name", CleanString(500), nullable=False),
    Column("lang", CleanString(16)),
    Column("tags", CleanJSON, nullable=False, default=list),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("in_config", Boolean, nullable=False, default=True),
    Column("interval", Float),  # seconds; NULL = the default interval
    # Why monitor stopped polling the feed on its own (e.g. 410 Gone); NULL: it is polled.
    Column("disabled_reason", CleanText),
    # The interval learnt from the feed's publication rate and the server's hints (seconds).
    Column("adaptive_interval", Float),
    Column("next_due", UTCDateTime(), nullable=False),
    Column("last_polled_at", UTCDateTime()),
    Column("last_success_at", UTCDateTime()),
    Column("last_status", CleanString(40)),
    Column("last_error", CleanText),
    Column("error_streak", Integer, nullable=False, default=0),
    Column("etag", CleanText),
    Column("last_modified", CleanText),
    Column("body_hash", CleanString(64)),
    Column("lease_owner", CleanString(200)),
    Column("lease_until", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
    Index("ix_feeds_next_due", "next_due"),
    # Only leased rows are in it: a worker finds, renews and frees its own leases cheaply.
    Index("ix_feeds_lease_owner", "lease_owner", postgresql_where=text("lease_owner IS NOT NULL"),
          sqlite_where=text("lease_owner IS NOT NULL")),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id")),
    Column("guid", CleanText),
    Column("url", CleanText),  # the article URL as the feed gave it
    Column("canonical_url", CleanText, unique=True),
    Column("title", CleanText, nullable=False, default=""),
    Column("summary", CleanText, nullable=False, default=""),
    Column("published", UTCDateTime()),
    Column("fetched_at", UTCDateTime(), nullable=False),
    Column("lang", CleanString(16)),
    Column("text", CleanText, nullable=False, default=""),
    Column("text_source", CleanString(20), nullable=False),  # page | summary | corpus
    Column("text_error", CleanString(60)),  # why the page text is missing (reason)
    Column("text_error_message", CleanText),
    Column("content_hash", CleanString(64), nullable=False),
    Column("relevant", Boolean, nullable=False),
    Column("score", Float, nullable=False),
    Column("topics", CleanJSON, nullable=False, default=list),
    Column("matches", CleanJSON, nullable=False, default=list),
    Column("rules_version", CleanString(40), nullable=False),
    Column("corpus_file", CleanString(300), unique=True),
    # Near-duplicates: the id of the first item of the cluster (that item's own id included);
    # NULL when no copy was found. The signature is neardup.to_bytes (NULL: text too short).
    Column("cluster", Integer),
    Column("signature", LargeBinary),
    UniqueConstraint("feed_id", "guid", name="uq_items_feed_guid"),
    Index("ix_items_relevant_id", "relevant", "id"),
    Index("ix_items_content_hash", "content_hash"),
    Index("ix_items_fetched_feed_relevant", "fetched_at", "feed_id", "relevant"),
    Index("ix_items_feed_relevant_id", "feed_id", "relevant", "id"),
    Index("ix_items_cluster", "cluster"),
)

# An item's publication time: when its feed says it was published, else when it was kept. The
# listings sort and filter on it, and on the score, walking the indexes below (migration 0010).
publication_time = func.coalesce(items.c.published, items.c.fetched_at)
Index("ix_items_published_at", publication_time, items.c.id)
Index("ix_items_relevant_published_at", items.c.relevant, publication_time, items.c.id)
Index("ix_items_score_id", items.c.score, items.c.id)

item_sources = Table(
    "item_sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    Column("feed_id", Integer, ForeignKey("feeds.id")),  # NULL: the seed corpus
    Column("guid", CleanText),
    Column("url", CleanText),  # the article URL as this feed gave it
    Column("canonical_url", CleanText),  # identity.canonical_url of `url`
    Column("seen_at", UTCDateTime(), nullable=False),
    UniqueConstraint("feed_id", "guid", name="uq_item_sources_feed_guid"),
    Index("ix_item_sources_item", "item_id"),
    Index("ix_item_sources_canonical_url", "canonical_url"),
)

item_bands = Table(
    "item_bands",
    metadata,
    Column("band", BigInteger, nullable=False),  # neardup.band_keys: signed 64-bit
    Column("item_id", Integer, ForeignKey("items.id"), nullable=False),
    PrimaryKeyConstraint("band", "item_id", name="pk_item_bands"),
)

polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id"), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("status", CleanString(20), nullable=False),  # ok | not-modified | unchanged | error
    Column("http_status", Integer),
    Column("bytes", Integer, nullable=False, default=0),
    Column("entries", Integer, nullable=False, default=0),
    Column("new_items", Integer, nullable=False, default=0),
    Column("relevant_items", Integer, nullable=False, default=0),
    Column("page_errors", Integer, nullable=False, default=0),
    Column("error_reason", CleanString(60)),
    Column("error_message", CleanText),
    Column("worker", CleanString(200)),  # the lease owner that made the poll (host:pid:nonce)
    Index("ix_polls_feed_started", "feed_id", "started_at"),
)

corpus_numbers = Table(
    "corpus_numbers",
    metadata,
    Column("number", Integer, primary_key=True, autoincrement=False),
    Column("key", String(16), nullable=False, unique=True),  # <h16> of NNN_<h16>.txt
    Column("origin", String(10), nullable=False),  # poll (written by a poll) | folder (found)
    Column("reserved_at", UTCDateTime(), nullable=False),
)
