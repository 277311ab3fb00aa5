"""Feed rows: syncing with feeds.yaml, due feeds and leases, poll outcomes. Does I/O.

In: `FeedSpec`s, poll outcomes, ``now``. Out: `FeedRow`s (their health, read side, is in
`health.py`). `feed_is_active` is the one definition of an active feed. Poll outcomes
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

import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, inspect, or_, select, type_coerce, update
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from monitor.settings import FeedSpec
from monitor.store.engine import storage_errors
from monitor.store.locks import SYNC_LOCK, transaction_lock
from monitor.store.schema import feeds, storable


@dataclass(frozen=True, slots=True)  # slots: a worker may hold thousands at once
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

    @property
    def never_fetched(self) -> bool:
        """No body of it was ever read (none of `FETCH_MARKS`): every entry is news."""
        return _fetch_marks(self) == _NONE_OF_THE_MARKS


# What a feed's first fetched body leaves behind: its hash, and the validators sent with it.
FETCH_MARKS = ("body_hash", "etag", "last_modified")
# Read at once: every feed of a cycle is asked, on the event loop (0.2 us a feed, was 0.5).
_fetch_marks = operator.attrgetter(*FETCH_MARKS)
_NONE_OF_THE_MARKS = (None,) * len(FETCH_MARKS)


@dataclass(frozen=True)
class SyncReport:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
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


@storage_errors
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
            row = rows.get(spec.url)
            if row is None:
                conn.execute(feeds.insert().values(url=spec.url, next_due=now, created_at=now,
                                                   error_streak=0, **configured_values(spec)))
                added.append(spec.url)
            elif (fresh := resynced_values(row, spec, now)) is not None:
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(**fresh))
                changed.append(spec.url)
        configured = {spec.url for spec in specs}
        for url, row in rows.items():
            if url not in configured and row.in_config:
                conn.execute(update(feeds).where(feeds.c.id == row.id).values(in_config=False))
                removed.append(url)
    return SyncReport(tuple(added), tuple(removed), tuple(changed))


@storage_errors
def lists_a_feed_never_fetched(engine: Engine, specs: Iterable[FeedSpec]) -> bool:
    """True when an enabled feed of `specs` was never fetched (or is not stored yet, or the
    store has no feeds table yet): all its entries will be news. Read only, before the feeds
    are synced."""
    urls = {spec.url for spec in specs if spec.enabled}
    if not urls:
        return False
    if not inspect(engine).has_table(feeds.name):
        return True
    fetched_once = or_(*(feeds.c[column].is_not(None) for column in FETCH_MARKS))
    with engine.connect() as conn:
        fetched = set(conn.scalars(select(feeds.c.url).where(fetched_once)))
    return not urls <= fetched


def feed_is_active() -> ColumnElement[bool]:
    """The one definition of an active feed: enabled, in feeds.yaml, and not stopped by monitor
    (``disabled_reason``, e.g. 410 Gone). Only active feeds are claimed, counted as active and
    as due."""
    return and_(feeds.c.enabled.is_(True), feeds.c.in_config.is_(True),
                feeds.c.disabled_reason.is_(None))


def configured_values(spec: FeedSpec) -> dict[str, Any]:
    """The columns of a feed row that feeds.yaml sets."""
    return {"name": spec.name, "lang": spec.lang, "tags": list(spec.tags),
            "enabled": spec.enabled, "interval": spec.interval, "in_config": True}


def resynced_values(row: Any, spec: FeedSpec, now: datetime | None) -> dict[str, Any] | None:
    """The columns `sync_feeds` writes when the feed's entry in feeds.yaml changed (None: it
    did not): its configuration, and a fresh start (no moved URL, no stop reason; a stopped
    feed due at `now`)."""
    values = configured_values(spec)
    if not any(getattr(row, key) != value for key, value in values.items()):
        return None
    values.update(fetch_url=None, disabled_reason=None)
    if row.disabled_reason is not None:
        values["next_due"] = now
    return values


# What a claim returns: `FeedRow`'s columns in its order, then next_due to sort on. No more: a
# 304 cycle claims every feed, and each column returned is converted for each of them (the
# dates parsed, the tags decoded), which cost more than the claim's own statement. next_due
# comes as the driver gives it (SQLite: the stored text, which sorts as the dates do;
# PostgreSQL: a datetime): it only orders the claim, and parsing it was most of the claim's
# time (15 ms of 2,000 feeds).
_CLAIMED = (feeds.c.id, feeds.c.url, feeds.c.name, feeds.c.lang, feeds.c.interval,
            feeds.c.etag, feeds.c.last_modified, feeds.c.body_hash, feeds.c.error_streak,
            feeds.c.fetch_url, feeds.c.adaptive_interval,
            type_coerce(feeds.c.next_due, NullType()))


def _claimed_feed(row: Sequence[Any]) -> FeedRow:
    (id_, url, name, lang, interval, etag, last_modified, body_hash, error_streak, fetch_url,
     adaptive, _) = row
    return FeedRow(id_, url, name, lang, interval, etag, last_modified, body_hash, error_streak,
                   fetch_url or url, adaptive)


@storage_errors
def claim_due_feeds(
    engine: Engine, *, owner: str, now: datetime, lease_until: datetime, limit: int,
    due_only: bool = True, polled_before: datetime | None = None, url: str | None = None,
) -> list[FeedRow]:
    """Lease up to `limit` feeds (due ones unless `due_only` is false; not polled since
    `polled_before` when given; only the feed of feeds.yaml's `url` when given) to `owner`,
    most overdue first; feeds leased to a live worker are skipped, never waited for."""
    free = or_(feeds.c.lease_until.is_(None), feeds.c.lease_until < now)
    condition = and_(feed_is_active(), free)
    if url is not None:
        condition = and_(condition, feeds.c.url == url)
    if due_only:
        condition = and_(condition, feeds.c.next_due <= now)
    if polled_before is not None:
        condition = and_(condition, or_(feeds.c.last_polled_at.is_(None),
                                        feeds.c.last_polled_at < polled_before))
    chosen = (select(feeds.c.id).where(condition).order_by(feeds.c.next_due)
              .limit(limit).with_for_update(skip_locked=True))  # no FOR UPDATE on SQLite
    with engine.begin() as conn:
        rows = conn.execute(
            update(feeds).where(feeds.c.id.in_(chosen.scalar_subquery()))
            .values(lease_owner=owner, lease_until=lease_until)
            .returning(*_CLAIMED)
        ).all()
    rows.sort(key=lambda row: (row[-1], row[0]))  # most overdue first; RETURNING has no order
    return [_claimed_feed(row) for row in rows]


@storage_errors
def why_not_claimed(engine: Engine, url: str, now: datetime) -> str:
    """Why the feed of feeds.yaml's `url` cannot be leased now, in words."""
    with engine.connect() as conn:
        row = conn.execute(select(feeds).where(feeds.c.url == url)).first()
    if row is None or not row.in_config:
        return "it is not in the database yet; run `monitor init` or start the daemon"
    if row.disabled_reason is not None:
        return f"monitor stopped polling it: {row.disabled_reason}"
    if not row.enabled:
        return "it is disabled in feeds.yaml; `monitor feeds enable` it first"
    if row.lease_until is not None and row.lease_until >= now:
        return (f"a worker ({row.lease_owner}) is polling it until {row.lease_until:%H:%M:%S} "
                "UTC at the latest; try again then")
    return "another worker took it meanwhile"


@storage_errors
def renew_leases(engine: Engine, owner: str, lease_until: datetime) -> int:
    """Push back the expiry of every lease `owner` holds; returns how many."""
    with engine.begin() as conn:
        return conn.execute(update(feeds).where(feeds.c.lease_owner == owner)
                            .values(lease_until=lease_until)).rowcount


@storage_errors
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


@storage_errors
def release_leases(engine: Engine, owner: str) -> None:
    with engine.begin() as conn:
        conn.execute(update(feeds).where(feeds.c.lease_owner == owner)
                     .values(lease_owner=None, lease_until=None))


@storage_errors
def record_polls(engine: Engine, outcomes: Sequence[tuple[PollRecord, int]]) -> None:
    """Store a batch of polls, each ``(record, error_streak)``: all the poll rows and all the
    feeds' new states in one transaction (two executemany statements)."""
    if outcomes:
        with engine.begin() as conn:
            _write_polls(conn, outcomes)


def record_poll(conn: Connection, record: PollRecord, *, error_streak: int) -> None:
    """Store one poll and its feed's new state; part of the caller's transaction."""
    _write_polls(conn, [(record, error_streak)])


# Two statements for every outcome of a batch, so a batch is two executemany calls: what differs
# between outcomes (failed or not, validators or not, moved or not) is in the parameters. They
# go to the driver as they are, with values prepared here (`_db_time`, `storable`): SQLAlchemy's
# per-value processing cost four times the database's own work (80 ms against 20 ms per 2,000
# polls on SQLite), and a 304 poll is mostly that write.
_POLL_INSERT = (
    "INSERT INTO polls (feed_id, started_at, finished_at, status, http_status, bytes, entries,"
    " new_items, relevant_items, page_errors, error_reason, error_message, worker) VALUES"
    " (:feed_id, :started_at, :finished_at, :status, :http_status, :bytes, :entries,"
    " :new_items, :relevant_items, :page_errors, :error_reason, :error_message, :worker)"
)
_NAMED_PARAMETER = re.compile(r"(?<!:):([a-z_]+)")
_FEED_UPDATE = (
    "UPDATE feeds SET last_polled_at = :finished_at, last_status = :last_status,"
    " next_due = :next_due, error_streak = :error_streak,"
    # The lease is freed only if it is still ours (after an expiry another worker may hold
    # it); a record without a worker frees it whoever holds it.
    " lease_owner = CASE WHEN :any_worker OR lease_owner = :worker THEN NULL"
    " ELSE lease_owner END,"
    " lease_until = CASE WHEN :any_worker OR lease_owner = :worker THEN NULL"
    " ELSE lease_until END,"
    " last_error = :last_error,"
    " last_success_at = coalesce(:last_success_at, last_success_at),"
    # Validators only from a complete poll: an interrupted one must see its entries again.
    " etag = CASE WHEN :validators THEN :etag ELSE etag END,"
    " last_modified = CASE WHEN :validators THEN :last_modified ELSE last_modified END,"
    " body_hash = CASE WHEN :validators THEN :body_hash ELSE body_hash END,"
    " fetch_url = coalesce(:fetch_url, fetch_url),"
    " disabled_reason = coalesce(:disabled_reason, disabled_reason),"
    " adaptive_interval = coalesce(:adaptive_interval, adaptive_interval)"
    " WHERE id = :feed_id"
)


def _write_polls(conn: Connection, outcomes: Sequence[tuple[PollRecord, int]]) -> None:
    as_stored = _db_time(conn)
    poll_rows, feed_params = [], []
    for record, streak in outcomes:
        finished = as_stored(record.finished_at)
        poll_rows.append(_poll_row(record, as_stored, finished))
        feed_params.append(_feed_params(record, streak, as_stored, finished))
    conn.exec_driver_sql(_in_driver_style(conn, _POLL_INSERT), poll_rows)
    conn.exec_driver_sql(_in_driver_style(conn, _FEED_UPDATE), feed_params)


def _in_driver_style(conn: Connection, sql: str) -> str:
    """`:name` parameters as the driver wants them: sqlite3 takes them as they are."""
    if conn.dialect.name == "sqlite":
        return sql
    return _NAMED_PARAMETER.sub(r"%(\1)s", sql)  # psycopg: pyformat


def _db_time(conn: Connection) -> Callable[[datetime | None], Any]:
    """Aware datetimes as the schema's `UTCDateTime` stores them on this backend."""
    if conn.dialect.name != "sqlite":
        return lambda value: value
    # SQLite keeps naive UTC text in SQLAlchemy's format (sortable, read back by UTCDateTime).
    return _sqlite_time


def _sqlite_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not UTC:  # monitor's own times are in UTC already (`now_utc`)
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


def _text(value: str | None) -> str | None:
    """`storable`, skipped for None (most of a poll's optional texts)."""
    return None if value is None else storable(value)


def _poll_row(record: PollRecord, as_stored: Callable, finished: Any) -> dict:
    return {
        "feed_id": record.feed_id, "started_at": as_stored(record.started_at),
        "finished_at": finished, "status": record.status,
        "http_status": record.http_status, "bytes": record.bytes, "entries": record.entries,
        "new_items": record.new_items, "relevant_items": record.relevant_items,
        "page_errors": record.page_errors, "error_reason": _text(record.error_reason),
        "error_message": _text(record.error_message), "worker": _text(record.worker),
    }


def _feed_params(record: PollRecord, error_streak: int, as_stored: Callable,
                 finished: Any) -> dict:
    failed = record.status == "error"
    return {
        "feed_id": record.feed_id, "finished_at": finished,
        "last_status": storable(record.error_reason or record.status),
        "next_due": as_stored(record.next_due), "error_streak": error_streak,
        "any_worker": record.worker is None, "worker": _text(record.worker),
        "last_error": _text(record.error_message) if failed else None,
        "last_success_at": None if failed else finished,
        "validators": record.status == "ok", "etag": _text(record.etag),
        "last_modified": _text(record.last_modified), "body_hash": record.body_hash,
        "fetch_url": _text(record.moved_to),
        "disabled_reason": _text(record.disabled_reason),
        "adaptive_interval": record.adaptive_interval,
    }
