"""Full-text search over items: SQLite FTS5, PostgreSQL tsvector with a GIN index.

Revision ID: 0003
Revises: 0002

SQLite: `items_fts`, an external-content FTS5 table over items(title, text), tokenizer
unicode61 with diacritics removed, kept in step by three triggers and filled from the existing
rows. PostgreSQL: `items.search_vector`, a stored generated column (title weighted A, text B,
'simple' configuration, accents of Latin letters folded with translate()), and a GIN index.
The text indexed is cut at 250,000 characters (a tsvector holds at most 1 MB).
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# Latin letters with diacritics (U+00C0-U+017F) and their bare letters; frozen here, the
# query side (monitor/store/search.py) must use the same two strings.
FOLD_FROM = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġ"
    "ĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž"
)
FOLD_TO = (
    "AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGg"
    "GgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZz"
)
MAX_CHARS = 250_000


def _vector(column: str, weight: str) -> str:
    return (f"setweight(to_tsvector('simple'::regconfig, translate(left(coalesce({column}, ''), "
            f"{MAX_CHARS}), '{FOLD_FROM}', '{FOLD_TO}')), '{weight}')")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS "
                   f"({_vector('title', 'A')} || {_vector('text', 'B')}) STORED")
        op.execute("CREATE INDEX ix_items_search ON items USING gin (search_vector)")
        return
    op.execute("CREATE VIRTUAL TABLE items_fts USING fts5(title, text, content='items', "
               "content_rowid='id', tokenize='unicode61 remove_diacritics 2')")
    op.execute("CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
               "INSERT INTO items_fts(rowid, title, text) VALUES (new.id, new.title, new.text); "
               "END")
    op.execute("CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
               "INSERT INTO items_fts(items_fts, rowid, title, text) "
               "VALUES ('delete', old.id, old.title, old.text); END")
    op.execute("CREATE TRIGGER items_fts_update AFTER UPDATE OF title, text ON items BEGIN "
               "INSERT INTO items_fts(items_fts, rowid, title, text) "
               "VALUES ('delete', old.id, old.title, old.text); "
               "INSERT INTO items_fts(rowid, title, text) VALUES (new.id, new.title, new.text); "
               "END")
    op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX ix_items_search")
        op.execute("ALTER TABLE items DROP COLUMN search_vector")
        return
    for trigger in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
        op.execute(f"DROP TRIGGER {trigger}")
    op.execute("DROP TABLE items_fts")
