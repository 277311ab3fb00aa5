"""A read-only engine for the inspector. Does I/O.

In: a database URL. Out: an SQLAlchemy `Engine` whose connections cannot write: SQLite
connections run with ``PRAGMA query_only`` and a deferred ``BEGIN`` (a reader never takes the
write lock the daemon needs, and one page reads one snapshot); PostgreSQL sessions are
``READ ONLY``. The schema itself is created by the command that starts the server.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 30_000


def read_engine(database_url: str) -> Engine:
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
