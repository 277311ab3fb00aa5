"""Storage: the schema, the engine per backend, and queries by entity (feeds, items).

In: rows to store and queries. Out: plain dicts and frozen dataclasses. Does I/O (SQLAlchemy 2
Core; SQLite by default, PostgreSQL with psycopg 3).
"""
