"""Connecting to the database: engine set-up per backend, and the schema brought up to date.

In: a database URL. Out: an SQLAlchemy `Engine`. Does I/O. SQLite runs in WAL mode with a busy
timeout and foreign keys on, so the daemon and an inspecting command can share the file;
PostgreSQL goes through psycopg 3. `read_engine` gives connections that cannot write (the
inspector, and the daemon's look-ups: on SQLite they never take the write lock).
`create_schema` runs the migrations (`migrate.py`); a database that cannot be reached becomes a
`StorageError` naming the URL without its password.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from monitor.errors import ConfigError, StorageError

SQLITE_BUSY_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_SECONDS = 10


def make_engine(database_url: str) -> Engine:
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(
            f"database_url {database_url!r} is not a database URL; use e.g. "
            "sqlite:///storage/monitor.db or postgresql+psycopg://user@host:5432/monitor"
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # BEGIN IMMEDIATE: a write transaction takes its lock up front (no upgrade deadlock).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    if backend != "postgresql":
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
    except OperationalError as exc:
        raise StorageError(
            f"cannot reach the database {describe_url(engine.url)}: "
            f"{str(exc.orig).strip() if exc.orig is not None else exc}; check database_url "
            "(or MONITOR_DATABASE_URL) and that the database server is running"
        ) from exc
    except SQLAlchemyError as exc:
        raise StorageError(
            f"cannot create or upgrade the schema in {describe_url(engine.url)}: "
            f"{exc.__class__.__name__}: {exc.orig if getattr(exc, 'orig', None) else exc}; "
            "check the database URL and the database user's rights"
        ) from exc


def read_engine(database_url: str) -> Engine:
    """Connections that cannot write: SQLite with ``PRAGMA query_only`` and a deferred
    ``BEGIN`` (a reader never takes the write lock, and one transaction reads one snapshot);
    PostgreSQL sessions ``READ ONLY``. The schema is made by whoever writes."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_read_only)
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN"))
        return engine
    return create_engine(url, pool_pre_ping=True).execution_options(postgresql_readonly=True)


def _sqlite_read_only(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # BEGIN is ours (see read_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA query_only=ON")
    cursor.close()
