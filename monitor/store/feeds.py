"""Feed rows: syncing with feeds.yaml, due feeds and leases, poll outcomes, health. Does I/O.

In: `FeedSpec`s, poll outcomes, ``now``. Out: `FeedRow`s and health listings. Poll outcomes
(feed state, validators, schedule, where the feed moved, why it stopped, its learnt interval, the
poll rows) are written a batch at a time, in one transaction.

A feed monitor stops polling on its own (``disabled_reason``, e.g. 410 Gone) is not claimed
until its entry in feeds.yaml changes; a feed that moved for good (301/308) is fetched from
``fetch_url`` and keeps its id and items.

Leases let several workers (processes, machines) share one database: `claim_due_feeds` marks
due feeds with the worker's identity and an expiry in one statement (on PostgreSQL the rows are
picked with ``FOR UPDATE SKIP LOCKED``, so two workers never wait on, nor take, the same feed;
on SQLite the transaction's ``BEGIN IMMEDIATE`` already excludes other writers). A live worker
renews its leases; a dead one's expire and its feeds go back to the pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from monitor.schedule import success_delay
from monitor.settings import FeedSpec, ScheduleSettings
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
    fetch_url: str  # where to fetch it: where it moved to for good, else `url`
    adaptive_interval: float | None  # seconds learnt from its publication rate


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
    moved_to: str | None = None  # a permanent redirect's final URL: fetched from there on
    disabled_reason: str | None = None  # stop polling it (e.g. "http-410") until feeds.yaml changes
    adaptive_interval: float | None = None  # a newly learnt interval; None keeps the stored one


def sync_feeds(engine: Engine, specs: Iterable[FeedSpec], now: datetime) -> SyncReport:
    """Make the feeds table follow feeds.yaml: add, update, and retire (never delete) feeds.

    A changed entry (or one removed and added back) is taken as a fresh start: where it moved
    to and why monitor stopped polling it are forgotten, and a stopped feed is due at once."""
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
                fresh = {"fetch_url": None, "disabled_reason": None}
                if row.disabled_reason is not None:
                    fresh["next_due"] = now
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(**values, **fresh))
                changed.append(spec.url)
        configured = {spec.url for spec in specs}
        for url, row in rows.items():
            if url not in configured and row.in_config:
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(in_config=False))
                removed.append(url)
    return SyncReport(tuple(added), tuple(removed), tuple(changed))


def _active():
    return and_(feeds.c.enabled.is_(True), feeds.c.in_config.is_(True),
                feeds.c.disabled_reason.is_(None))


def _row(record) -> FeedRow:
    return FeedRow(id=record.id, url=record.url, name=record.name, lang=record.lang,
                   interval=record.interval, etag=record.etag,
                   last_modified=record.last_modified, body_hash=record.body_hash,
                   error_streak=record.error_streak, fetch_url=record.fetch_url or record.url,
                   adaptive_interval=record.adaptive_interval)


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


def record_polls(engine: Engine, outcomes: Sequence[tuple[PollRecord, int]]) -> None:
    """Store a batch of polls, each ``(record, error_streak)``: all the poll rows and all the
    feeds' new states in one transaction (two executemany statements)."""
    if outcomes:
        with engine.begin() as conn:
            _write_polls(conn, outcomes)


def record_poll(conn: Connection, record: PollRecord, *, error_streak: int) -> None:
    """Store one poll and its feed's new state; part of the caller's transaction."""
    _write_polls(conn, [(record, error_streak)])


def _bind(name: str, column: str | None = None) -> Any:
    """A parameter of `_FEED_UPDATE`, typed like the feeds column it fills (text cleaning
    included), or as a flag."""
    return bindparam(f"p_{name}", type_=feeds.c[column].type if column else Boolean())


def _set_if(flag: str, column: str) -> Any:
    return case((_bind(flag), _bind(column, column)), else_=feeds.c[column])


def _freed_unless_taken(column: str) -> Any:
    # Free the lease only if it is still ours (after an expiry another worker may hold it);
    # a record without a worker frees it whoever holds it.
    ours = or_(_bind("any_worker"), feeds.c.lease_owner == _bind("worker", "lease_owner"))
    return case((ours, None), else_=feeds.c[column])


# One statement for every outcome of a batch, so a batch is one executemany: what differs
# between outcomes (failed or not, validators or not, moved or not) is in the parameters.
_FEED_UPDATE = (
    update(feeds).where(feeds.c.id == bindparam("p_feed_id"))
    .values(
        last_polled_at=_bind("last_polled_at", "last_polled_at"),
        last_status=_bind("last_status", "last_status"),
        next_due=_bind("next_due", "next_due"),
        error_streak=_bind("error_streak", "error_streak"),
        lease_owner=_freed_unless_taken("lease_owner"),
        lease_until=_freed_unless_taken("lease_until"),
        last_error=_bind("last_error", "last_error"),
        last_success_at=func.coalesce(_bind("last_success_at", "last_success_at"),
                                      feeds.c.last_success_at),
        etag=_set_if("validators", "etag"),
        last_modified=_set_if("validators", "last_modified"),
        body_hash=_set_if("validators", "body_hash"),
        fetch_url=func.coalesce(_bind("fetch_url", "fetch_url"), feeds.c.fetch_url),
        disabled_reason=func.coalesce(_bind("disabled_reason", "disabled_reason"),
                                      feeds.c.disabled_reason),
        adaptive_interval=func.coalesce(_bind("adaptive_interval", "adaptive_interval"),
                                        feeds.c.adaptive_interval),
    )
)


def _write_polls(conn: Connection, outcomes: Sequence[tuple[PollRecord, int]]) -> None:
    conn.execute(polls.insert(), [_poll_row(record) for record, _ in outcomes])
    conn.execute(_FEED_UPDATE, [_feed_params(record, streak) for record, streak in outcomes])


def _poll_row(record: PollRecord) -> dict:
    return {
        "feed_id": record.feed_id, "started_at": record.started_at,
        "finished_at": record.finished_at, "status": record.status,
        "http_status": record.http_status, "bytes": record.bytes, "entries": record.entries,
        "new_items": record.new_items, "relevant_items": record.relevant_items,
        "page_errors": record.page_errors, "error_reason": record.error_reason,
        "error_message": record.error_message, "worker": record.worker,
    }


def _feed_params(record: PollRecord, error_streak: int) -> dict:
    failed = record.status == "error"
    return {
        "p_feed_id": record.feed_id, "p_last_polled_at": record.finished_at,
        "p_last_status": record.error_reason or record.status, "p_next_due": record.next_due,
        "p_error_streak": error_streak,
        "p_any_worker": record.worker is None, "p_worker": record.worker,
        "p_last_error": record.error_message if failed else None,
        "p_last_success_at": None if failed else record.finished_at,
        # Validators only from a complete poll: an interrupted one must see its entries again.
        "p_validators": record.status == "ok", "p_etag": record.etag,
        "p_last_modified": record.last_modified, "p_body_hash": record.body_hash,
        "p_fetch_url": record.moved_to, "p_disabled_reason": record.disabled_reason,
        "p_adaptive_interval": record.adaptive_interval,
    }


def feed_health(engine: Engine, schedule: ScheduleSettings) -> Iterator[dict]:
    """Every feed with its health and yield, in configuration order.

    Besides the last poll: ``unhealthy`` (``schedule.unhealthy_after`` failures or more in a
    row), ``disabled_reason`` (why monitor stopped polling it), ``fetch_url`` (where it moved
    to, else None), and the ``interval`` in effect after a good poll with its
    ``interval_source``: configured (feeds.yaml), adaptive (learnt), or default."""
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
                "unhealthy": row.error_streak >= schedule.unhealthy_after,
                "disabled_reason": row.disabled_reason,
                "fetch_url": row.fetch_url if row.fetch_url not in (None, row.url) else None,
                "interval": success_delay(row.interval, schedule,
                                          adaptive=row.adaptive_interval),
                "interval_source": _interval_source(row, schedule),
                "next_due": _iso(row.next_due), "items": int(row.items),
                "relevant_items": int(row.relevant_items),
            }


def _interval_source(row: Any, schedule: ScheduleSettings) -> str:
    if row.interval is not None:
        return "configured"
    if schedule.adaptive and row.adaptive_interval is not None:
        return "adaptive"
    return "default"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
