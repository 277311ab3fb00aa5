"""Totals and figures: `monitor stats`, /metrics, /healthz, items per feed and day. Does I/O
(read only).

In: an `Engine` (and the time, the histogram's bounds, a first day). Out: plain dicts of
counts. Active and due feeds follow the one definition of an active feed
(`feeds.feed_is_active`): a feed monitor stopped (410 Gone) is neither.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import Connection, Engine, and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from monitor.settings import WITHDRAWN_FOLDER
from monitor.store.engine import storage_errors
from monitor.store.feeds import feed_is_active
from monitor.store.listings import day_start
from monitor.store.schema import feeds, items, polls


@storage_errors
def totals(engine: Engine) -> dict:
    """Feeds (known, active), items (all, relevant), corpus files (in the corpus folder,
    withdrawn), polls, failed polls and page errors, failed polls by reason, and when the last
    poll ended."""
    with engine.connect() as conn:
        feed_count, active = conn.execute(select(
            func.count(), func.sum(case((feed_is_active(), 1), else_=0))).select_from(feeds)).one()
        item_count, relevant = _item_counts(conn)
        corpus_files, withdrawn = _corpus_file_counts(conn)
        by_status = _polls_by_status(conn)
        page_errors, last_poll = conn.execute(select(
            func.coalesce(func.sum(polls.c.page_errors), 0), func.max(polls.c.finished_at))).one()
        by_reason = _errors_by_reason(conn)
    return {
        "feeds": feed_count, "active_feeds": int(active or 0), "items": item_count,
        "relevant_items": relevant, "corpus_files": corpus_files,
        "withdrawn_corpus_files": withdrawn, "polls": sum(by_status.values()),
        "errors": by_status.get("error", 0), "page_errors": int(page_errors),
        "errors_by_reason": by_reason,
        "last_poll": last_poll.isoformat() if isinstance(last_poll, datetime) else last_poll,
    }


def _item_counts(conn: Connection) -> tuple[int, int]:
    """Items, and relevant items."""
    count, relevant = conn.execute(select(
        func.count(), func.sum(case((items.c.relevant.is_(True), 1), else_=0))
    ).select_from(items)).one()
    return int(count), int(relevant or 0)


@storage_errors
def corpus_file_counts(engine: Engine) -> tuple[int, int]:
    """Corpus files the items hold: (in the corpus folder, in withdrawn/)."""
    with engine.connect() as conn:
        return _corpus_file_counts(conn)


def _corpus_file_counts(conn: Connection) -> tuple[int, int]:
    withdrawn = items.c.corpus_file.like(f"{WITHDRAWN_FOLDER}/%")
    held, moved = conn.execute(select(
        func.count(items.c.corpus_file), func.sum(case((withdrawn, 1), else_=0)))).one()
    return int(held) - int(moved or 0), int(moved or 0)


def _polls_by_status(conn: Connection) -> dict[str, int]:
    return {status: int(n) for status, n in conn.execute(
        select(polls.c.status, func.count()).group_by(polls.c.status))}


def _errors_by_reason(conn: Connection) -> dict[str | None, int]:
    return {reason: int(n) for reason, n in conn.execute(
        select(polls.c.error_reason, func.count()).where(polls.c.status == "error")
        .group_by(polls.c.error_reason))}


def _day(conn: Connection, column) -> ColumnElement:
    """The UTC calendar day of a stored timestamp, per backend."""
    if conn.dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


@storage_errors
def daily_counts(engine: Engine, first_day: date) -> dict[int | None, dict[str, list[int]]]:
    """Items and relevant items kept per feed and UTC day since `first_day`.

    Out: ``{feed_id: {"YYYY-MM-DD": [items, relevant]}}`` (days without items are absent).
    """
    out: dict[int | None, dict[str, list[int]]] = {}
    with engine.connect() as conn:
        day = _day(conn, items.c.fetched_at).label("day")
        query = (select(items.c.feed_id, day, func.count().label("n"),
                        func.sum(case((items.c.relevant.is_(True), 1), else_=0)).label("r"))
                 .where(items.c.fetched_at >= day_start(first_day))
                 .group_by(day, items.c.feed_id))  # day first: a (fetched_at, …) index serves it
        for row in conn.execute(query):
            key = row.day.isoformat() if isinstance(row.day, date) else str(row.day)[:10]
            out.setdefault(row.feed_id, {})[key] = [int(row.n), int(row.r or 0)]
    return out


def _poll_duration(conn: Connection) -> ColumnElement:
    """Seconds between a poll's start and end, per backend."""
    if conn.dialect.name == "postgresql":
        return func.extract("epoch", polls.c.finished_at - polls.c.started_at)
    return (func.julianday(polls.c.finished_at) - func.julianday(polls.c.started_at)) * 86400.0


@storage_errors
def metric_figures(engine: Engine, *, now: datetime, buckets: tuple[float, ...]) -> dict:
    """Totals for /metrics: polls by status, errors by reason, items, feeds (known, active,
    due and not leased, failing), and a histogram of poll durations (counts at or under each
    bucket bound, sum and count)."""
    active = feed_is_active()
    free = (feeds.c.lease_until.is_(None)) | (feeds.c.lease_until < now)
    with engine.connect() as conn:
        polls_by_status = _polls_by_status(conn)
        errors_by_reason = _errors_by_reason(conn)
        duration = _poll_duration(conn)
        histogram = conn.execute(select(
            *[func.sum(case((duration <= bound, 1), else_=0)) for bound in buckets],
            func.coalesce(func.sum(duration), 0.0), func.count(),
            func.coalesce(func.sum(polls.c.page_errors), 0),
        ).select_from(polls)).one()
        feed_row = conn.execute(select(
            func.count(),
            func.sum(case((active, 1), else_=0)),
            func.sum(case((and_(active, feeds.c.next_due <= now, free), 1), else_=0)),
            func.sum(case((and_(active, feeds.c.error_streak > 0), 1), else_=0)),
            func.max(feeds.c.last_success_at),
        ).select_from(feeds)).one()
        item_count, relevant = _item_counts(conn)
    return {
        "polls_by_status": polls_by_status,
        "errors_by_reason": {(k or "unknown"): v for k, v in errors_by_reason.items()},
        "page_errors": int(histogram[-1] or 0),
        "duration_buckets": [int(v or 0) for v in histogram[:len(buckets)]],
        "duration_sum": float(histogram[len(buckets)] or 0.0),
        "duration_count": int(histogram[len(buckets) + 1] or 0),
        "feeds": int(feed_row[0] or 0), "active_feeds": int(feed_row[1] or 0),
        "due_feeds": int(feed_row[2] or 0), "failing_feeds": int(feed_row[3] or 0),
        "last_success": _aware(feed_row[4]),
        "items": item_count, "relevant_items": relevant,
    }


@storage_errors
def health_figures(engine: Engine) -> dict:
    """Is the database answering, and when did a poll last succeed (aware UTC or None)."""
    with engine.connect() as conn:
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
