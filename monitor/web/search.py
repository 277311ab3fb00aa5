"""Full-text search for the inspector, behind one function. Does I/O (read only).

In: an open `Connection` and `ItemFilters` with ``q`` set. Out: one keyset page of matching
items, newest first like every listing (so filters and paging work the same), each with an
excerpt around its first hit and the [start, end] spans of the hits in it (for highlighting).

The query language is the store's (`monitor.textsearch`: all words, "phrases", OR, -excluded;
case and accents ignored). The match uses the database's own index when the database has it
(migration 0003: SQLite FTS5 ``items_fts``, PostgreSQL ``items.search_vector``), as a condition
on the keyset query; a database without it falls back to substring matching (LIKE / ILIKE),
which reads the newest items first and stops at a page, but reads the whole table for a rare
word.
"""

from __future__ import annotations

from sqlalchemy import Connection, Integer, and_, column, not_, or_, table, text
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.schema import feeds, items
from monitor.store.search import tsquery_sql
from monitor.textsearch import Query, fts5_match, parse_query, spans
from monitor.web.filters import BadParameter, ItemFilters
from monitor.web.queries import EXCERPT_CHARS, item_row, items_select, like_pattern

ITEMS_FTS = table("items_fts", column("rowid", Integer))
_INDEX_KIND: dict[str, str | None] = {}  # database URL -> "fts5" | "tsvector" | None


def search_items(conn: Connection, filters: ItemFilters) -> list[dict]:
    """One page (``limit + 1`` rows at most) of items matching ``filters.q`` and the filters."""
    try:
        query = parse_query(filters.q or "")
    except ValueError as exc:
        raise BadParameter("q", str(exc)) from None
    kind = index_kind(conn)
    if kind == "fts5":  # the index drives the scan, newest match first
        select_ = items_select(
            filters, extra=[text("items_fts MATCH :fts_query").bindparams(
                fts_query=fts5_match(query))],
            text_column=items.c.text, order_column=ITEMS_FTS.c.rowid,
            source=ITEMS_FTS.join(items, items.c.id == ITEMS_FTS.c.rowid).outerjoin(
                feeds, feeds.c.id == items.c.feed_id))
    else:
        condition = (tsvector_condition(query) if kind == "tsvector"
                     else substring_condition(conn, query))
        select_ = items_select(filters, extra=[condition], text_column=items.c.text)
    words = query.words()
    typed = {word.lower() for clause in query.clauses for phrase in clause for word in phrase}
    out = []
    for row in conn.execute(select_):
        item = item_row(row._mapping)
        item["text"], item["hits"] = excerpt(item["text"], words, typed)
        out.append(item)
    return out


def index_kind(conn: Connection) -> str | None:
    """Which full-text index this database has (looked up once per database)."""
    key = conn.engine.url.render_as_string(hide_password=False)
    if key not in _INDEX_KIND:
        if conn.dialect.name == "postgresql":
            found = conn.execute(text(
                "SELECT 1 FROM information_schema.columns WHERE table_name = 'items' "
                "AND column_name = 'search_vector' AND table_schema = current_schema()")).first()
            _INDEX_KIND[key] = "tsvector" if found else None
        else:
            found = conn.execute(text(
                "SELECT 1 FROM sqlite_master WHERE name = 'items_fts'")).first()
            _INDEX_KIND[key] = "fts5" if found else None
    return _INDEX_KIND[key]


def tsvector_condition(query: Query) -> ColumnElement:
    expression, params = tsquery_sql(query)
    return text(f"items.search_vector @@ ({expression})").bindparams(**params)


def substring_condition(conn: Connection, query: Query) -> ColumnElement:
    """Every clause (one of its phrases) in the title or the text, no excluded phrase."""
    postgres = conn.dialect.name == "postgresql"

    def contains(phrase: tuple[str, ...]) -> ColumnElement:
        pattern = f"%{like_pattern(' '.join(phrase))}%"
        if postgres:
            return or_(items.c.title.ilike(pattern, escape="\\"),
                       items.c.text.ilike(pattern, escape="\\"))
        return or_(items.c.title.like(pattern, escape="\\"),
                   items.c.text.like(pattern, escape="\\"))

    terms = [or_(*[contains(phrase) for phrase in clause]) for clause in query.clauses]
    terms += [not_(contains(phrase)) for phrase in query.excluded]
    return and_(*terms)


def excerpt(text_: str, words: set[str], typed: set[str] = frozenset(),
            width: int = EXCERPT_CHARS) -> tuple[str, list[list[int]]]:
    """About `width` characters of the text around its first hit, and the [start, end] spans of
    the hits inside that excerpt (offsets in the excerpt, case and accents ignored).

    `words` are the folded words, `typed` the words as typed (lower-cased): the first hit is
    looked for as typed (cheap), else folded, piece by piece from the start.
    """
    lowered = text_.lower()
    found = [at for at in (lowered.find(word) for word in typed | words) if at >= 0]
    first = min(found) if found else _first_folded_hit(text_, words)
    left = max(0, first - width // 3)
    if left:
        space = text_.find(" ", left, first)
        left = space + 1 if space >= 0 else left
    right = min(len(text_), left + width)
    prefix = "…" if left else ""
    shift = len(prefix)
    inside = [[start + shift, end + shift] for start, end in spans(text_[left:right], words)]
    return prefix + text_[left:right] + ("…" if right < len(text_) else ""), inside


def _first_folded_hit(text_: str, words: set[str], piece: int = 2000) -> int:
    for start in range(0, len(text_), piece):
        end = text_.find(" ", start + piece)  # end on a space: no word cut in two
        hits = spans(text_[start:end if end >= 0 else len(text_)], words)
        if hits:
            return start + hits[0][0]
    return 0
