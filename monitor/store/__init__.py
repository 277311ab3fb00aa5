"""Storage, the only part of monitor that speaks SQL: the schema and its migrations, the engine
per backend, and queries named for what they return.

In: rows to store and questions about them. Out: plain dicts and frozen dataclasses; every
database failure leaves as `StorageError` (reason ``storage-error``, see `engine.storage_errors`).
Does I/O (SQLAlchemy 2 Core; SQLite by default, PostgreSQL with psycopg 3; Alembic revisions
in `migrations/`). The faces (`cli`, `web`) and the worker call these functions and format or
use what comes back; they import no SQLAlchemy.

Modules, the write side: `engine` (connect, read-only connections, the schema brought up to
date or checked, errors at the edge), `migrate` (the revisions, run programmatically), `schema`
(tables, text cleaning), `locks` (advisory locks), `feeds` (sync with feeds.yaml, claims and
leases, poll records, the one definition of an active feed), `items` (is an entry or a story
new, store a feed's items), `verdicts` (re-applied rules), `corpusnumbers` (corpus file
numbers handed out by the database), `labels` (an analyst's labels, kept as history, and the
labelled items with their text and verdict). The read side: `listings` (items newest first,
one item, its sources and copies, a day's relevant items, exports), `search` (the full-text
search of the command line and the inspector), `totals` (stats, /metrics, /healthz, items per
day), `health` (feed health, with feeds.yaml as it is now).
"""
