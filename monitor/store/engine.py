"""Connecting to the database: engine set-up per backend and schema creation. Does I/O.

In: a database URL. Out: an SQLAlchemy `Engine`. SQLite runs in WAL mode with a busy timeout
and foreign keys on, so the daemon and an inspecting command can share the file.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from monitor.errors import StorageError
from monitor.store.schema import metadata

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(database_url: str) -> Engine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # BEGIN IMMEDIATE: a write transaction takes its lock up front (no upgrade deadlock).
        event.listen(engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves (see make_engine)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def create_schema(engine: Engine) -> None:
    """Create the tables that do not exist yet (idempotent)."""
    try:
        metadata.create_all(engine)
    except SQLAlchemyError as exc:
        raise StorageError(
            f"cannot create the schema in {engine.url.render_as_string(hide_password=True)}: "
            f"{exc.__class__.__name__}: {exc.orig if hasattr(exc, 'orig') else exc}; "
            "check the database URL and that the database is reachable"
        ) from exc
