"""The start-up check of the commands that write (`init`, `run`, `reclassify`; `items label`
writes the database only). Does I/O.

In: `Settings`. Out: an engine on the database, its schema current, after checking that monitor
may write the corpus folder and the database (for SQLite, its folder and its file too): one
line and exit status 1 (`StorageError`) when it may not, 2 (`ConfigError`) when a file stands
where a folder should be, before any feed is polled. Without it, a read-only corpus folder was
found only by the polls, item by item.
"""

from __future__ import annotations

from monitor.corpus import check_writable_folder, write_refused
from monitor.settings import Settings
from monitor.store.engine import (
    Engine,
    check_writable,
    create_schema,
    make_engine,
    sqlite_file,
)

DATABASE_SETTING = "database_url (MONITOR_DATABASE_URL)"


def open_storage(settings: Settings) -> Engine:
    """The database, ready to write, once the corpus folder and the database are known to be
    writable; raises StorageError or ConfigError otherwise."""
    check_writable_folder(settings.corpus_dir, "the corpus folder")
    return open_database(settings)


def open_database(settings: Settings) -> Engine:
    """The database, its schema current, once it is known to be writable (the corpus folder
    is not looked at); raises StorageError or ConfigError otherwise."""
    database = sqlite_file(settings.database_url)
    if database is not None:
        check_writable_folder(database.parent, "the database's folder", DATABASE_SETTING)
        if database.exists():
            try:
                database.open("r+b").close()  # opened for writing, nothing written
            except OSError as exc:
                raise write_refused(f"the database {database}", exc, DATABASE_SETTING) from exc
    engine = make_engine(settings.database_url)
    try:
        create_schema(engine)
        check_writable(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine
