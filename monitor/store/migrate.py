"""Schema migrations: bring any monitor database to the newest revision. Does I/O (Alembic).

In: an `Engine`. Out: the revision the database is at (`upgrade`), or where it stands against
this monitor's newest revision, read only (`schema_revision`). `upgrade` creates a new database,
upgrades an older one, and recognises a database made without migrations (tables but no
`alembic_version`): one made by monitor 0.1.0 is stamped at revision 0001 first; one made by
`metadata.create_all` of a later schema.py (tests, scripts) at the newest revision whose
tables it has (the full-text index, which create_all never makes, is then added). The
revisions ship inside the package (`migrations/versions/`) and run programmatically: no
alembic.ini to find. One upgrade is one transaction; on PostgreSQL it holds an advisory lock,
so workers starting together on several machines upgrade once and the others wait, then find
the database at head.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

from monitor.store.locks import MIGRATION_LOCK, transaction_lock

log = logging.getLogger("monitor.migrate")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
FIRST_REVISION = "0001"


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    return ScriptDirectory.from_config(_config()).get_current_head()


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def known_revisions() -> set[str]:
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def schema_revision(engine: Engine) -> tuple[str | None, str]:
    """(the revision the database is at, the newest this monitor knows); the first is None for
    a database without monitor's tables, and the revision its tables match for one made
    without migrations. Reads only."""
    with engine.connect() as conn:
        found = current_revision(conn)
        if found is None:
            found = _revision_without_stamp(conn)
    return found, head_revision()


def _revision_without_stamp(conn: Connection) -> str | None:
    """The revision an unstamped database's tables match; None for an empty database."""
    inspector = inspect(conn)
    if not inspector.has_table("feeds"):
        return None
    if not inspector.has_table("corpus_numbers"):
        return FIRST_REVISION  # monitor 0.1.0
    return "0002"  # tables of 0002 (create_all never makes the full-text index of 0003)


def upgrade(engine: Engine, target: str = "head") -> str | None:
    """Upgrade the database to `target` (default: the newest revision); returns its revision."""
    wanted = head_revision() if target == "head" else target
    with engine.connect() as conn:
        if current_revision(conn) == wanted:  # the usual case: nothing to do, no lock taken
            return wanted
    with engine.begin() as conn:
        transaction_lock(conn, MIGRATION_LOCK)
        config = _config(conn)
        before = current_revision(conn)
        if before is None and (found := _revision_without_stamp(conn)) is not None:
            command.stamp(config, found)
            before = f"{found} (found unstamped)"
        command.upgrade(config, target)
        after = current_revision(conn)
        if after != before:
            log.info("database schema %s: revision %s", "created" if before is None else
                     f"upgraded from revision {before}", after)
        return after

