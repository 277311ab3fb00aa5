"""Connecting to the database, and the store's edge: every database error leaves as StorageError.

In: a database URL. Out: an SQLAlchemy `Engine` (re-exported here as the type the rest of
monitor names). Does I/O. SQLite runs in WAL mode with a busy timeout and foreign keys on, so
the daemon and an inspecting command can share the file; PostgreSQL goes through psycopg 3 with
a connect timeout. `make_engine` is for whoever writes; `create_schema` runs the migrations
(`migrate.py`). `read_engine` gives connections that cannot write (the daemon's look-ups: on
SQLite they never take the write lock), and `open_read_only` is that, for a database whose
schema is current: the listing commands and the inspector never run the migrations.
`check_writable` is the start-up check of the commands that write: one write, rolled back.

`storage_errors` wraps the store's public functions: an SQLAlchemy error escaping one becomes a
`StorageError` (reason ``storage-error``) that names the database without its password, says
what the database answered and what to do (`monitor init` for a missing table; the URL and the
server for a connection that failed; a backup or a rescue for an SQLite file that is damaged or
not a database).
"""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable
from contextlib import closing
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    SQLAlchemyError,
)

from monitor.errors import ConfigError, StorageError

__all__ = ["ONE_STATEMENT", "Engine", "backend_name", "check_writable", "create_schema",
           "describe_url", "make_engine", "open_read_only", "read_engine", "sqlite_file",
           "storage_errors"]

# The largest id there can be (ids are Integer columns: 32 bits in PostgreSQL). An id, cursor or
# limit past it fails in the database or its driver (integer out of range, OverflowError)
# instead of matching nothing, so the faces refuse it first. (Here, not in `listings`: the
# command line imports it at start-up.)
LARGEST_ID = 2**31 - 1
SQLITE_BUSY_TIMEOUT_MS = 30_000
# The execution option of a read-only connection that runs one statement (see read_engine).
ONE_STATEMENT = "monitor_one_statement"
CONNECT_TIMEOUT_SECONDS = 10
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26  # SQLite's primary result codes
_Function = TypeVar("_Function", bound=Callable[..., Any])


def _parse(database_url: str) -> URL:
    try:
        return make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            f"database_url {database_url!r} is not a database URL; use e.g. "
            "sqlite:///storage/monitor.db or postgresql+psycopg://user@host:5432/monitor"
        ) from None


def backend_name(database_url: str) -> str:
    """``sqlite`` or ``postgresql`` (or whatever else the URL names)."""
    return _parse(database_url).get_backend_name()


def sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite database URL; None for another backend or an in-memory one."""
    url = _parse(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def make_engine(database_url: str) -> Engine:
    url = _parse(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        _check_sqlite_library()
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # BEGIN IMMEDIATE: a write transaction takes its lock up front (no upgrade deadlock).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return _postgresql_engine(url)


def _check_sqlite_library() -> None:
    """StorageError, saying what to do, unless Python's SQLite has what the store uses:
    RETURNING (3.35) and the JSON functions (built in since 3.38, in nearly every build
    before). Without this, an older one fails at the first claim with a syntax error."""
    version = sqlite3.sqlite_version
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise StorageError(f"this Python's SQLite is {version}; monitor needs 3.35 or newer: "
                           "use a Python built with a newer SQLite, or PostgreSQL (database_url)")
    try:
        with closing(sqlite3.connect(":memory:")) as probe:
            probe.execute("SELECT value FROM json_each('[1]')")
    except sqlite3.OperationalError as exc:
        raise StorageError(f"this Python's SQLite ({version}) has no JSON functions ({exc}); "
                           "monitor needs them: use a Python built with a SQLite that has "
                           "them (3.38 or newer has them always), or PostgreSQL "
                           "(database_url)") from exc


def _postgresql_engine(url: URL) -> Engine:
    if url.get_backend_name() != "postgresql":
        raise ConfigError(f"database_url {describe_url(url)}: monitor supports sqlite:/// and "
                          "postgresql+psycopg:// URLs")
    try:
        return create_engine(url, pool_pre_ping=True,
                             connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    except (NoSuchModuleError, ModuleNotFoundError) as exc:
        raise StorageError(f"cannot use {describe_url(url)}: {exc}; PostgreSQL needs psycopg 3: "
                           "pip install -e '.[postgres]'") from exc


def describe_url(url) -> str:
    """The URL as it may be shown: the password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Create the database or upgrade it to the newest revision (idempotent, concurrent-safe)."""
    from monitor.store.migrate import upgrade

    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        if (damaged := _damaged_file(exc, engine.url)) is not None:
            raise damaged from exc
        if isinstance(exc, OperationalError):
            raise StorageError(
                f"cannot reach the database {describe_url(engine.url)}: {_said(exc)}; check "
                "database_url (or MONITOR_DATABASE_URL) and that the database server is running"
            ) from exc
        raise StorageError(
            f"cannot create or upgrade the schema in {describe_url(engine.url)}: "
            f"{_said(exc)}; check the database URL and the database user's rights"
        ) from exc


def check_writable(engine: Engine) -> None:
    """A StorageError unless the database takes a write: one is made, then rolled back (so a
    full disk passes: nothing reaches it). Run it after `create_schema`."""
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
            transaction.rollback()
    except SQLAlchemyError as exc:
        raise StorageError(
            f"cannot write to the database {describe_url(engine.url)}: {_said(exc)}; make it "
            "writable (the rights of the user monitor runs as on the file and its folder, or "
            "of the database user on its tables), or set database_url (MONITOR_DATABASE_URL)"
        ) from exc


def read_engine(database_url: str) -> Engine:
    """Connections that cannot write: SQLite with ``PRAGMA query_only`` and a deferred
    ``BEGIN`` (a reader never takes the write lock, and one transaction reads one snapshot);
    PostgreSQL sessions ``READ ONLY``. The schema is made by whoever writes. A connection given
    the execution option ``ONE_STATEMENT`` (a look-up of one statement, made often) skips the
    ``BEGIN`` on SQLite: a lone statement reads one snapshot of its own."""
    url = _parse(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_read_only)
        event.listen(engine, "begin", _sqlite_begin_read)
        return engine
    return _postgresql_engine(url).execution_options(postgresql_readonly=True)


def _sqlite_begin_read(conn: Connection) -> None:
    if not conn.get_execution_options().get(ONE_STATEMENT):
        conn.exec_driver_sql("BEGIN")


def _sqlite_read_only(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours (see read_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()


def open_read_only(database_url: str) -> Engine:
    """A `read_engine` on a database whose schema is this monitor's; a StorageError saying to
    run `monitor init` when there is no database yet or its schema is older (nothing is
    created or upgraded here: that is `monitor init`'s work)."""
    from monitor.store.migrate import known_revisions, schema_revision

    if (path := sqlite_file(database_url)) is not None and not path.is_file():
        raise StorageError(f"there is no database at {path}: run `monitor init` to create it")
    engine = read_engine(database_url)
    found, head = storage_errors(schema_revision)(engine)
    if found != head:
        engine.dispose()
        where = describe_url(engine.url)
        if found is None:
            raise StorageError(f"the database {where} has no monitor schema yet: run "
                               "`monitor init` to create it")
        if found in known_revisions():
            raise StorageError(f"the database {where} is at schema revision {found}, older than "
                               f"this monitor's {head}: run `monitor init` to upgrade it")
        raise StorageError(f"the database {where} is at schema revision {found}, which this "
                           f"monitor does not know (its newest is {head}): a newer monitor "
                           "made it; upgrade monitor")
    return engine


def storage_errors(function: _Function) -> _Function:
    """`function` (plain or a generator) with its SQLAlchemy errors raised as StorageError."""
    if inspect.isgeneratorfunction(function):
        @wraps(function)
        def stream(*args: Any, **kwargs: Any) -> Any:
            try:
                yield from function(*args, **kwargs)
            except SQLAlchemyError as exc:
                raise storage_error(exc, _database_of(args)) from exc

        return stream  # type: ignore[return-value]

    @wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except SQLAlchemyError as exc:
            raise storage_error(exc, _database_of(args)) from exc

    return call  # type: ignore[return-value]


def storage_error(exc: SQLAlchemyError, url: URL | None) -> StorageError:
    """The StorageError for what the database answered: what it said and what to do."""
    if (damaged := _damaged_file(exc, url)) is not None:
        return damaged
    where = f"the database {describe_url(url)}" if url is not None else "the database"
    said = _said(exc)
    if _missing_table(exc):
        advice = ("a table is missing: run `monitor init` to create or upgrade the schema "
                  "(and check database_url)")
    elif isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError)
                                               and exc.connection_invalidated):
        advice = ("check database_url (or MONITOR_DATABASE_URL), that the database server is "
                  "running, and that monitor may write there (file rights, disk space)")
    else:
        advice = ("check the database user's rights, and run `monitor init` if the schema is "
                  "older than this monitor")
    return StorageError(f"{where} failed: {said}; {advice}")


def _said(exc: SQLAlchemyError) -> str:
    """What the database said, on one line (SQLAlchemy's message adds the SQL and a link)."""
    origin = getattr(exc, "orig", None)
    text = str(origin if origin is not None else exc).strip()
    first = text.splitlines()[0] if text else exc.__class__.__name__
    return first if origin is not None else f"{exc.__class__.__name__}: {first}"


def _damaged_file(exc: SQLAlchemyError, url: URL | None) -> StorageError | None:
    """The StorageError for an SQLite file that is not a database or is corrupt, else None.

    Neither is cured by checking the URL or a server: the file itself has to be replaced."""
    code = getattr(getattr(exc, "orig", None), "sqlite_errorcode", None)
    if code is None:
        return None
    path = url.database if url is not None and url.database else "the database file"
    if code & 0xFF == _SQLITE_NOTADB:
        return StorageError(
            f"{path} is not an SQLite database (it was overwritten, or database_url names "
            "another kind of file): point database_url at the monitor's database, or restore "
            "it from a backup; moving this file aside and running `monitor init` starts an "
            "empty one")
    if code & 0xFF == _SQLITE_CORRUPT:
        return StorageError(
            f"the database file {path} is damaged (SQLite: {_said(exc)}): stop monitor, keep "
            f"a copy of the file, and restore it from a backup, or rescue what can be read "
            f"with `sqlite3 {path} .recover | sqlite3 recovered.db` and point database_url at "
            "recovered.db")
    return None


def _missing_table(exc: SQLAlchemyError) -> bool:
    origin = getattr(exc, "orig", None)
    if origin is None:
        return False
    # sqlite3: "no such table: items"; psycopg: UndefinedTable, SQLSTATE 42P01
    return ("no such table" in str(origin)
            or getattr(origin, "sqlstate", None) == "42P01")


def _database_of(args: tuple) -> URL | None:
    """The URL of the database a store function was given (an engine, a connection, or an
    object holding an engine)."""
    for arg in args[:2]:
        if isinstance(arg, Engine):
            return arg.url
        if isinstance(arg, Connection):
            return arg.engine.url
        engine = getattr(arg, "engine", None)
        if isinstance(engine, Engine):
            return engine.url
    return None
