"""Database-wide locks held for one transaction. Does I/O.

In: a `Connection` inside a transaction and a lock name. Out: nothing; returns once the lock is
held, and the lock goes with the transaction. On PostgreSQL an advisory transaction lock; on
SQLite nothing to do, as every transaction there begins with BEGIN IMMEDIATE and so already
excludes every other writer.
"""

from __future__ import annotations

from sqlalchemy import Connection, text

# Arbitrary constants, the same in every monitor process (the PostgreSQL advisory lock keys).
MIGRATION_LOCK = 0x6D6F6E01  # schema upgrades
SYNC_LOCK = 0x6D6F6E02  # syncing the feeds table with feeds.yaml


def transaction_lock(conn: Connection, key: int) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
