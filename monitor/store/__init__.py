"""Storage: the schema and its migrations, the engine per backend, and queries by entity.

In: rows to store and queries. Out: plain dicts and frozen dataclasses. Does I/O (SQLAlchemy 2
Core; SQLite by default, PostgreSQL with psycopg 3; Alembic revisions in `migrations/`).
Modules: `schema` (tables, text cleaning), `engine` (connect, bring the schema up to date),
`migrate` (the revisions, run programmatically), `locks` (advisory locks), `feeds` (sync,
claims and leases, poll records, health), `items` (store, list, show, totals), `search`
(full-text), `corpusnumbers` (corpus file numbers handed out by the database).
"""
