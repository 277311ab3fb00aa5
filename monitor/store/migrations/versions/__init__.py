"""Alembic revisions, oldest first: 0001 is the schema of monitor 0.1.0 (before migrations)."""
