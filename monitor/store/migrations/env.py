"""Alembic's environment for monitor: runs on the connection `migrate.py` hands over.

The connection is already in a transaction (and, on PostgreSQL, holds the migration lock), so
every revision of one upgrade commits or rolls back together.
"""

from __future__ import annotations

from alembic import context

from monitor.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, transaction_per_migration=False)
with context.begin_transaction():
    context.run_migrations()
