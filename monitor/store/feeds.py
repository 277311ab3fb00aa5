"""Feed rows: syncing with feeds.yaml, due feeds and leases, poll outcomes, health. Does I/O.

In: `FeedSpec`s, poll outcomes, ``now``. Out: `FeedRow`s and health listings. A poll's outcome
(feed state, validators, schedule, the poll row) is written in one transaction.

Leases let several workers (processes, machines) share one database: `claim_due_feeds` marks
due feeds with the worker's identity and an expiry in one statement (on PostgreSQL the rows are
picked with ``FOR UPDATE SKIP LOCKED``, so two workers never wait on, nor take, the same feed;
on SQLite the transaction's ``BEGIN IMMEDIATE`` already excludes other writers). A live worker
renews its leases; a dead one's expire and its feeds go back to the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, update

from monitor.settings import FeedSpec
from monitor.store.locks import SYNC_LOCK, transaction_lock
from monitor.store.schema import feeds, items, polls


@dataclass(frozen=True)
class FeedRow:
    id: int
    url: str
    name: str
    lang: str | None
    interval: float | None
    etag: str | None
    last_modified: str | None
    body_hash: str | None
    error_streak: int


@dataclass(frozen=True)
class SyncReport:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True)
class PollRecord:
    """What one poll of one feed did, as stored in `polls` and reflected on the feed row."""

    feed_id: int
    started_at: datetime
    finished_at: datetime
    status: str  # ok | not-modified | unchanged | error
    next_due: datetime
    http_status: int | None = None
    bytes: int = 0
    entries: int = 0
    new_items: int = 0
    relevant_items: int = 0
    page_errors: int = 0
    error_reason: str | None = None
    error_message: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    worker: str | None = None  # the lease owner that polled; None frees the lease whoever holds it


def sync_feeds(engine: Engine, specs: Iterable[FeedSpec], now: datetime) -> SyncReport:
    """Make the feeds table follow feeds.yaml: add, update, and retire (never delete) feeds."""
    specs = list(specs)
    added, removed, changed = [], [], []
    with engine.begin() as conn:
        transaction_lock(conn, SYNC_LOCK)  # workers starting together add each feed once
        rows = {row.url: row for row in conn.execute(select(feeds))}
        for spec in specs:
            values = {"name": spec.name, "lang": spec.lang, "tags": list(spec.tags),
                      "enabled": spec.enabled, "interval": spec.interval, "in_config": True}
            row = rows.get(spec.url)
            if row is None:
                conn.execute(feeds.insert().values(url=spec.url, next_due=now, created_at=now,
                                                   error_streak=0, **values))
                added.append(spec.url)
            elif any(getattr(row, key) != value for key, value in values.items()):
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(**values))
                changed.append(spec.url)
        configured = {spec.url for spec in specs}
        for url, row in rows.items():
            if url not in configured and row.in_config:
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(in_config=False))
                removed.append(url)
    return SyncReport(tuple(added), tuple(removed), tuple(changed))


def _active():
    return and_(feeds.c.enabled.is_(True), feeds.c.in_config.is_(True))


def _row(record) -> FeedRow:
    return FeedRow(id=record.id, url=record.url, name=record.name, lang=record.lang,
                   interval=record.interval, etag=record.etag,
                   last_modified=record.last_modified, body_hash=record.body_hash,
                   error_streak=record.error_streak)


def active_feeds(engine: Engine) -> list[FeedRow]:
    with engine.connect() as conn:
        return [_row(r) for r in conn.execute(select(feeds).where(_active()).order_by(feeds.c.id))]


def claim_due_feeds(
    engine: Engine, *, owner: str, now: datetime, lease_until: datetime, limit: int,
    due_only: bool = True,
) -> list[FeedRow]:
    """Lease up to `limit` feeds (due ones unless `due_only` is false) to `owner`, most overdue
    first; feeds leased to a live worker are skipped, never waited for."""
    free = or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now)
    condition = and_(_active(), free)
    if due_only:
        condition = and_(condition, feeds.c.next_due <= now)
    chosen = (select(feeds.c.id).where(condition).order_by(feeds.c.next_due)
              .limit(limit).with_for_update(skip_locked=True))  # no FOR UPDATE on SQLite
    with engine.begin() as conn:
        rows = conn.execute(
            update(feeds).where(feeds.c.id.in_(chosen.scalar_subquery()))
            .values(lease_owner=owner, lease_until=lease_until)
            .returning(*feeds.c)
        ).all()
    return [_row(r) for r in sorted(rows, key=lambda r: (r.next_due, r.id))]


def renew_leases(engine: Engine, owner: str, lease_until: datetime) -> int:
    """Push back the expiry of every lease `owner` holds; returns how many."""
    with engine.begin() as conn:
        return conn.execute(update(feeds).where(feeds.c.lease_owner == owner)
                            .values(lease_until=lease_until)).rowcount


def release_dead_leases(engine: Engine, is_dead: Callable[[str], bool]) -> list[str]:
    """Free the leases of owners that `is_dead` says are gone (e.g. a killed local process)."""
    with engine.begin() as conn:
        owners = conn.execute(select(feeds.c.lease_owner).distinct()
                              .where(feeds.c.lease_owner.isnot(None))).scalars().all()
        dead = [owner for owner in owners if is_dead(owner)]
        if dead:
            conn.execute(update(feeds).where(feeds.c.lease_owner.in_(dead))
                         .values(lease_owner=None, lease_until=None))
    return dead


def release_leases(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(feeds).where(feeds.c.lease_owner == owner)
                     .values(lease_owner=None, lease_until=None))


def record_poll(conn: Connection, record: PollRecord, *, error_streak: int) -> None:
    """Store the poll row and the feed's new state; part of the caller's transaction."""
    conn.execute(polls.insert().values(
        feed_id=record.feed_id, started_at=record.started_at, finished_at=record.finished_at,
        status=record.status, http_status=record.http_status, bytes=record.bytes,
        entries=record.entries, new_items=record.new_items, relevant_items=record.relevant_items,
        page_errors=record.page_errors, error_reason=record.error_reason,
        error_message=record.error_message, worker=record.worker,
    ))
    values = {
        "last_polled_at": record.finished_at, "last_status": record.error_reason or record.status,
        "next_due": record.next_due, "error_streak": error_streak,
        "lease_owner": None, "lease_until": None,
    }
    if record.worker is not None:
        # Free the lease only if it is still ours (after an expiry another worker may hold it).
        ours = feeds.c.lease_owner == record.worker
        values["lease_owner"] = case((ours, None), else_=feeds.c.lease_owner)
        values["lease_until"] = case((ours, None), else_=feeds.c.lease_until)
    if record.status == "error":
        values["last_error"] = record.error_message
    else:
        values.update(last_success_at=record.finished_at, last_error=None)
        if record.status == "ok":
            values.update(etag=record.etag, last_modified=record.last_modified,
                          body_hash=record.body_hash)
    conn.execute(update(feeds).where(feeds.c.id == record.feed_id).values(**values))


def feed_health(engine: Engine) -> Iterator[dict]:
    """Every feed with its health and yield, in configuration order."""
    item_counts = (
        select(items.c.feed_id, func.count().label("item_count"),
               func.sum(case((items.c.relevant.is_(True), 1), else_=0)).label("relevant_count"))
        .group_by(items.c.feed_id).subquery()
    )
    query = (
        select(feeds, func.coalesce(item_counts.c.item_count, 0).label("items"),
               func.coalesce(item_counts.c.relevant_count, 0).label("relevant_items"))
        .select_from(feeds.outerjoin(item_counts, item_counts.c.feed_id == feeds.c.id))
        .order_by(feeds.c.id)
    )
    with engine.connect() as conn:
        for row in conn.execute(query):
            yield {
                "id": row.id, "url": row.url, "name": row.name, "lang": row.lang,
                "tags": row.tags, "enabled": bool(row.enabled and row.in_config),
                "in_config": bool(row.in_config),
                "last_poll": _iso(row.last_polled_at), "status": row.last_status,
                "error_streak": row.error_streak, "last_error": row.last_error,
                "next_due": _iso(row.next_due), "items": int(row.items),
                "relevant_items": int(row.relevant_items),
            }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
