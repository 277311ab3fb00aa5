"""The database schema (SQLAlchemy Core): feeds, items, polls.

- feeds: one row per configured feed URL, with its schedule state (next due, error streak,
  lease), its HTTP validators (ETag, Last-Modified, body hash) and its last outcome.
- items: one row per story, with the extracted text and the verdict of the rules (relevant,
  score, topics, matches, rules version) and its corpus file when relevant.
- polls: one row per poll of a feed: status, HTTP status, bytes, new items, error reason.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


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
    Column("url", Text, nullable=False, unique=True),
    Column("name", String(500), nullable=False),
    Column("lang", String(16)),
    Column("tags", JSON, nullable=False, default=list),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("in_config", Boolean, nullable=False, default=True),
    Column("interval", Float),  # seconds; NULL = the default interval
    Column("next_due", UTCDateTime(), nullable=False),
    Column("last_polled_at", UTCDateTime()),
    Column("last_success_at", UTCDateTime()),
    Column("last_status", String(40)),
    Column("last_error", Text),
    Column("error_streak", Integer, nullable=False, default=0),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_hash", String(64)),
    Column("lease_owner", String(200)),
    Column("lease_until", UTCDateTime()),
    Column("created_at", UTCDateTime(), nullable=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id")),
    Column("guid", Text),
    Column("url", Text),  # the article URL as the feed gave it
    Column("canonical_url", Text, unique=True),
    Column("title", Text, nullable=False, default=""),
    Column("summary", Text, nullable=False, default=""),
    Column("published", UTCDateTime()),
    Column("fetched_at", UTCDateTime(), nullable=False),
    Column("lang", String(16)),
    Column("text", Text, nullable=False, default=""),
    Column("text_source", String(20), nullable=False),  # page | summary | corpus
    Column("text_error", String(60)),  # why the page text is missing (reason)
    Column("text_error_message", Text),
    Column("content_hash", String(64), nullable=False),
    Column("relevant", Boolean, nullable=False),
    Column("score", Float, nullable=False),
    Column("topics", JSON, nullable=False, default=list),
    Column("matches", JSON, nullable=False, default=list),
    Column("rules_version", String(40), nullable=False),
    Column("corpus_file", String(300), unique=True),
    UniqueConstraint("feed_id", "guid", name="uq_items_feed_guid"),
    Index("ix_items_relevant_id", "relevant", "id"),
    Index("ix_items_content_hash", "content_hash"),
)

polls = Table(
    "polls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id"), nullable=False),
    Column("started_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),  # ok | not-modified | unchanged | error
    Column("http_status", Integer),
    Column("bytes", Integer, nullable=False, default=0),
    Column("entries", Integer, nullable=False, default=0),
    Column("new_items", Integer, nullable=False, default=0),
    Column("relevant_items", Integer, nullable=False, default=0),
    Column("page_errors", Integer, nullable=False, default=0),
    Column("error_reason", String(60)),
    Column("error_message", Text),
    Index("ix_polls_feed_started", "feed_id", "started_at"),
)
