"""Poll outcomes, the write side: each poll's row, and the state it leaves on its feed.

In: `PollRecord`s, each with its feed's error streak. Out: rows of `polls`, and in `feeds` each
feed's new state (validators, schedule, error streak, lease freed, where it moved, why monitor
stopped polling it, its learnt interval). Does I/O. (Feed rows and leases are in `feeds.py`.)

A batch of outcomes is one transaction of two statements whatever its size (on SQLite, one
more UPDATE for each further outcome of a feed already in the batch, `_rounds`): what differs
between outcomes (failed or not, validators or not, moved or not) is in the parameters, handed
to the driver as they are, prepared here (`_db_time`, `storable`): SQLAlchemy's per-value
processing cost four times the database's own work (80 ms against 20 ms per 2,000 polls on
SQLite), and a 304 poll is mostly this write.

On SQLite each statement takes the batch as rows of VALUES, so that the driver runs it in one
step: the sqlite3 module lets go of the GIL for every step, an executemany is a step per row,
and each step then waits for a busy event loop to hand the GIL back (2,000 outcomes took
17-24 s beside a thread that never blocks, against 0.13-0.25 s in one step; in a 304 cycle a
batch begun during the polls was written only once they had all ended). Rows of VALUES rather
than one JSON parameter read by `json_each` and `json_extract` column by column: on SQLite
3.40 those took 65-83 ms of SQLite's CPU per 2,000 outcomes, VALUES 52 ms. A library built
to take fewer parameters in a statement than the usual 32,766 gets more statements
(`_rows_per_statement`). PostgreSQL takes them as an executemany (psycopg pipelines it).
"""

from __future__ import annotations

import functools
import math
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from monitor.store.engine import storage_errors
from monitor.store.schema import storable


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
def record_polls(engine: Engine, outcomes: Sequence[tuple[PollRecord, int]]) -> None:
    """Store a batch of polls, each ``(record, error_streak)``: all the poll rows and all the
    feeds' new states in one transaction."""
    if outcomes:
        with engine.begin() as conn:
            _write_polls(conn, outcomes)


def record_poll(conn: Connection, record: PollRecord, *, error_streak: int) -> None:
    """Store one poll and its feed's new state; part of the caller's transaction."""
    _write_polls(conn, [(record, error_streak)])


_POLL_COLUMNS = ("feed_id", "started_at", "finished_at", "status", "http_status", "bytes",
                 "entries", "new_items", "relevant_items", "page_errors", "error_reason",
                 "error_message", "worker")
_POLL_INSERT = (f"INSERT INTO polls ({', '.join(_POLL_COLUMNS)})"
                f" VALUES ({', '.join(':' + name for name in _POLL_COLUMNS)})")
_BY_FEED = " WHERE id = :feed_id"
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
    + _BY_FEED
)
_NAMED_PARAMETER = re.compile(r"(?<!:):([a-z_]+)")

# psycopg takes pyformat parameters.
_POSTGRESQL_POLL_INSERT = _NAMED_PARAMETER.sub(r"%(\1)s", _POLL_INSERT)
_POSTGRESQL_FEED_UPDATE = _NAMED_PARAMETER.sub(r"%(\1)s", _FEED_UPDATE)


# SQLite: the same statements with the batch as rows of VALUES, one statement for up to
# `_rows_per_statement` outcomes. The feeds' new values are named new_*, so that
# `coalesce(new_fetch_url, fetch_url)` is not ambiguous.
_FEED_PARAMETERS = tuple(dict.fromkeys(_NAMED_PARAMETER.findall(_FEED_UPDATE)))
_SQLITE_FEED_SET = _NAMED_PARAMETER.sub(r"outcome.new_\1", _FEED_UPDATE.removesuffix(_BY_FEED))


@functools.lru_cache(maxsize=64)
def _sqlite_poll_insert(rows: int) -> str:
    return f"INSERT INTO polls ({', '.join(_POLL_COLUMNS)}) VALUES {_values(rows, _POLL_COLUMNS)}"


@functools.lru_cache(maxsize=64)
def _sqlite_feed_update(rows: int) -> str:
    names = ", ".join(f"new_{name}" for name in _FEED_PARAMETERS)
    return (f"WITH outcome({names}) AS (VALUES {_values(rows, _FEED_PARAMETERS)}) "
            f"{_SQLITE_FEED_SET} FROM outcome WHERE feeds.id = outcome.new_feed_id")


def _values(rows: int, names: Sequence[str]) -> str:
    row = f"({', '.join('?' * len(names))})"
    return ", ".join([row] * rows)


def _rows_per_statement(conn: Connection) -> int:
    """As many outcomes as this SQLite library takes parameters in one statement (32,766 by
    default since 3.32; a build may set fewer)."""
    limit = conn.connection.dbapi_connection.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    return max(1, limit // len(_FEED_PARAMETERS))


def _by_statement(rows: list[dict], names: Sequence[str], size: int
                  ) -> Iterator[tuple[int, tuple]]:
    """`rows` in pieces of at most `size`: each piece's length and its values, row by row."""
    for start in range(0, len(rows), size):
        piece = rows[start:start + size]
        yield len(piece), tuple([row[name] for row in piece for name in names])


def _write_polls(conn: Connection, outcomes: Sequence[tuple[PollRecord, int]]) -> None:
    as_stored = _db_time(conn)
    poll_rows, feed_params = [], []
    for record, streak in outcomes:
        finished = as_stored(record.finished_at)
        poll_rows.append(_poll_row(record, as_stored, finished))
        feed_params.append(_feed_params(record, streak, as_stored, finished))
    if conn.dialect.name != "sqlite":
        conn.exec_driver_sql(_POSTGRESQL_POLL_INSERT, poll_rows)
        conn.exec_driver_sql(_POSTGRESQL_FEED_UPDATE, feed_params)
        return
    size = _rows_per_statement(conn)
    for rows, values in _by_statement(poll_rows, _POLL_COLUMNS, size):
        conn.exec_driver_sql(_sqlite_poll_insert(rows), values)
    for feed_round in _rounds(feed_params):
        for rows, values in _by_statement(feed_round, _FEED_PARAMETERS, size):
            conn.exec_driver_sql(_sqlite_feed_update(rows), values)


def _rounds(feed_params: list[dict]) -> Iterator[list[dict]]:
    """The feeds' new states in rounds where each feed comes once, in the batch's order: an
    UPDATE ... FROM takes one of the rows that match a feed, any of them, where the outcomes of
    one feed must apply one after the other (a failure keeps the success before it)."""
    while feed_params:
        seen: set[int] = set()
        this_round, later = [], []
        for params in feed_params:
            (later if params["feed_id"] in seen else this_round).append(params)
            seen.add(params["feed_id"])
        yield this_round
        feed_params = later


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


def _finite(value: float | None) -> float | None:
    """None (keep the stored value) for an infinite or NaN interval: no schedule can use it."""
    return value if value is None or math.isfinite(value) else None


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
        "adaptive_interval": _finite(record.adaptive_interval),
    }
