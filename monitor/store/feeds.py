"""Feed rows: syncing with feeds.yaml, due feeds and leases. Does I/O.

In: `FeedSpec`s, ``now``. Out: `FeedRow`s (their health, read side, is in `health.py`; what a
poll leaves on its feed is written by `polls.py`). `feed_is_active` is the one definition of an
active feed.

A feed monitor stops polling on its own (``disabled_reason``, e.g. 410 Gone) is not claimed
until its entry in feeds.yaml changes; a feed that moved for good (301/308) is fetched from
``fetch_url`` and keeps its id and items.

Leases let several workers (processes, machines) share one database: `claim_due_feeds` marks
due feeds with the worker's identity and an expiry in one transaction (on PostgreSQL one
statement, the rows picked with ``FOR UPDATE SKIP LOCKED``, so two workers never wait on, nor
take, the same feed; on SQLite, whose ``BEGIN IMMEDIATE`` already excludes other writers, three
statements that each run in one step of the driver, see `_lease_in_three_steps`). A live
worker renews its leases; a dead one's expire and its feeds go back to the pool.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Select,
    and_,
    func,
    inspect,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from monitor.settings import FeedSpec
from monitor.store.engine import storage_errors
from monitor.store.locks import SYNC_LOCK, transaction_lock
from monitor.store.schema import feeds


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
        if conn.dialect.name == "sqlite":
            rows = _lease_in_three_steps(conn, chosen, owner, lease_until)
        else:
            rows = conn.execute(
                update(feeds).where(feeds.c.id.in_(chosen.scalar_subquery()))
                .values(lease_owner=owner, lease_until=lease_until)
                .returning(*_CLAIMED)
            ).all()
    rows.sort(key=lambda row: (row[-1], row[0]))  # most overdue first; RETURNING has no order
    return [_claimed_feed(row) for row in rows]


def _lease_in_three_steps(conn: Connection, chosen: Select, owner: str,
                          lease_until: datetime) -> list[Sequence[Any]]:
    """The claim on SQLite as three statements of one step each, not a step per feed: the ids
    chosen, as one JSON array; their lease; their `_CLAIMED` rows, as one JSON array. (An
    UPDATE ... RETURNING returns a row a step, and the driver lets go of the GIL at each, to
    wait for a busy event loop to hand it back: see `polls.py`.) BEGIN IMMEDIATE keeps every
    other writer out meanwhile."""
    picked = chosen.subquery()
    ids = conn.execute(select(func.json_group_array(picked.c.id))).scalar_one()
    listed = select(func.json_each(ids).table_valued("value").c.value)
    conn.execute(update(feeds).where(feeds.c.id.in_(listed))
                 .values(lease_owner=owner, lease_until=lease_until))
    return json.loads(conn.execute(select(func.json_group_array(func.json_array(*_CLAIMED)))
                                   .where(feeds.c.id.in_(listed))).scalar_one())


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
