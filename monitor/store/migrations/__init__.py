"""The Alembic revisions of monitor's database, run by `monitor.store.migrate` (no alembic.ini).

To add one: copy the newest file in `versions/`, give it the next number as `revision` and the
previous one as `down_revision`, write `upgrade()` for both SQLite and PostgreSQL, and never
change a revision that has shipped. `tests/test_migrations.py` checks that the head matches
`monitor/store/schema.py`.
"""
