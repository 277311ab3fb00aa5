"""Full-text search over stored items, the one search of monitor. Does I/O (read only).

In: a `Query` (see `textsearch.py`) and, for the inspector, an `ItemSelection`. Out: listed
items (`listings.listed_item`) with, for `best_matches` (the command line), their ``rank``
(higher is better) and a one-line ``snippet`` with the words marked (``textsearch.MARK``, or
the marks given), best match first; for `newest_matches` (the inspector), an excerpt as
``text`` and the [start, end] spans of the hits in it as ``hits``, in the selection's order like
every listing, so filters and keyset pages work the same. Both cut the text with
`textsearch.excerpt`. The inspector's search is best match first by default
(`ranked_matches`: the same rank, with its filters, paged by offset); `match_condition` is the
search as a WHERE term, to count, page back or export a search's items.

The index is the database's own, made and kept up to date by migration 0003: on SQLite the
FTS5 table ``items_fts`` (unicode61 tokens, diacritics removed), ranked by bm25 with the title
weighing 4 times the text; on PostgreSQL the generated column ``items.search_vector`` with its
GIN index ('simple' configuration, accents of Latin letters folded by the same translate() as
the column), ranked by ts_rank with the title in weight class A and the text in B. A database
without it (made before 0003) is searched by substring (LIKE / ILIKE), which reads the newest
items first and stops at a page, but reads the whole table for a rare word.
"""

from __future__ import annotations

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    and_,
    column,
    desc,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    table,
    text,
)
from sqlalchemy.sql.elements import ColumnElement

from monitor.store.engine import storage_errors
from monitor.store.listings import (
    ITEMS_WITH_FEED,
    ItemSelection,
    TextPart,
    like_pattern,
    listed_item,
    newest_items_select,
    selection_conditions,
)
from monitor.store.schema import feeds, items
from monitor.textsearch import MARK, Query, excerpt, fts5_match, is_prefix, snippet

# The same two strings as migration 0003 (a test checks they agree).
FOLD_FROM = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġ"
    "ĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽž"
)
FOLD_TO = (
    "AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyyAaAaAaCcCcCcCcDdEeEeEeEeEeGgGgGg"
    "GgHhIiIiIiIiIJjKkLlLlLlNnNnNnOoOoOoRrRrRrSsSsSsSsTtTtUuUuUuUuUuUuWwYyYZzZzZz"
)
TITLE_WEIGHT = 4.0  # bm25 weight of the title against 1.0 for the text (SQLite)
ITEMS_FTS = table("items_fts", column("rowid", Integer))
_INDEX_KIND: dict[str, str | None] = {}  # database URL -> "fts5" | "tsvector" | None


@storage_errors
def best_matches(engine: Engine, query: Query, *, relevant: bool | None = None,
                 limit: int = 20, mark: tuple[str, str] = MARK) -> list[dict]:
    """The `limit` best items for `query`, best first, each with its rank and a snippet (its
    hits between the two strings of `mark`)."""
    with engine.connect() as conn:
        ranked = _ranked_ids(conn, query, relevant=relevant, limit=limit)
        if not ranked:
            return []
        rows = conn.execute(newest_items_select(ItemSelection(), limit=None, text="full", extra=[
            items.c.id.in_([item_id for item_id, _ in ranked])]))
        by_id = {row.id: listed_item(row._mapping) for row in rows}
    found = []
    for item_id, rank in ranked:
        item = by_id.get(item_id)
        if item is None:  # deleted meanwhile
            continue
        text_ = item.pop("text")
        item["rank"] = float(f"{rank:.4g}")
        item["snippet"] = snippet(text_ if text_.strip() else item["title"], query, mark=mark)
        found.append(item)
    return found


def _ranked_ids(conn: Connection, query: Query, *, relevant: bool | None,
                limit: int) -> list[tuple[int, float]]:
    """(item id, rank) of the best matches, best first."""
    only = "" if relevant is None else f" AND items.relevant = {'true' if relevant else 'false'}"
    if conn.dialect.name == "postgresql":
        tsquery, params = tsquery_sql(query)
        sql = (f"SELECT items.id, ts_rank(items.search_vector, q.query, 1) AS rank "
               f"FROM items, (SELECT {tsquery} AS query) AS q "
               f"WHERE items.search_vector @@ q.query{only} "
               "ORDER BY rank DESC, items.id DESC LIMIT :limit")
    else:
        params = {"match": fts5_match(query)}
        only = only.replace("true", "1").replace("false", "0")
        sql = (f"SELECT items.id, -bm25(items_fts, {TITLE_WEIGHT}, 1.0) AS rank "
               "FROM items_fts JOIN items ON items.id = items_fts.rowid "
               f"WHERE items_fts MATCH :match{only} "
               "ORDER BY rank DESC, items.id DESC LIMIT :limit")
    rows = conn.execute(text(sql), {**params, "limit": limit})
    return [(row[0], float(row[1])) for row in rows]


def tsquery_sql(query: Query) -> tuple[str, dict]:
    """The query as a tsquery expression (phrases as bound parameters) and its parameters."""
    params = {"fold_from": FOLD_FROM, "fold_to": FOLD_TO}

    def phrase(words: tuple[str, ...]) -> str:
        name = f"p{len(params)}"
        if is_prefix(words[-1]):  # the words are letters and digits only: no operator in them
            params[name] = " <-> ".join(words[:-1] + (words[-1][:-1] + ":*",))
            function = "to_tsquery"
        else:
            params[name] = " ".join(words)
            function = "phraseto_tsquery"
        return f"{function}('simple'::regconfig, translate(:{name}, :fold_from, :fold_to))"

    expression = " && ".join(
        "(" + " || ".join(phrase(p) for p in clause) + ")" for clause in query.clauses
    )
    for words in query.excluded:
        expression = f"({expression}) && !!{phrase(words)}"
    return expression, params


@storage_errors
def newest_matches(engine: Engine, selection: ItemSelection, query: Query, *,
                   limit: int) -> list[dict]:
    """At most `limit` selected items matching `query`, newest first, each with an excerpt
    around its first hit as ``text`` and the spans of the hits in it as ``hits``."""
    with engine.connect() as conn:
        if selection.sort == "kept":  # the index's own order (ids): read as it goes
            rows = [listed_item(row._mapping) for row in
                    conn.execute(_matches_select(conn, selection, query, limit, "full"))]
        else:  # ordered on their ids first, then only the page's rows read
            ids = [row.id for row in conn.execute(_matches_select(
                conn, selection, query, limit, None).with_only_columns(items.c.id))]
            found = {row.id: listed_item(row._mapping) for row in conn.execute(
                newest_items_select(ItemSelection(), limit=None, text="full",
                                    extra=[items.c.id.in_(ids)]))}
            rows = [found[item_id] for item_id in ids if item_id in found]
    return _with_excerpts(rows, query)


@storage_errors
def matching_items(engine: Engine, selection: ItemSelection, query: Query, *,
                   limit: int) -> list[dict]:
    """At most `limit` selected items matching `query` in the selection's order, without their
    text (for counting them)."""
    with engine.connect() as conn:
        return [listed_item(row._mapping)
                for row in conn.execute(_matches_select(conn, selection, query, limit, None))]


@storage_errors
def ranked_matches(engine: Engine, selection: ItemSelection, query: Query, *, limit: int,
                   offset: int = 0) -> list[dict]:
    """The selected items matching `query`, best match first (the rank of `best_matches`; its
    cursor is not looked at), `limit` of them after the first `offset`; each with its ``rank``,
    an excerpt as ``text`` and the spans of its hits as ``hits``."""
    conditions = selection_conditions(selection)
    with engine.connect() as conn:
        kind = _index_kind(conn)
        if kind == "fts5":
            rank = literal_column(f"-bm25(items_fts, {TITLE_WEIGHT}, 1.0)")
            # without filters, the index alone: reading each match's row doubles the time
            source = (ITEMS_FTS.join(items, items.c.id == ITEMS_FTS.c.rowid) if conditions
                      else ITEMS_FTS)
            conditions.append(text("items_fts MATCH :fts_query").bindparams(
                fts_query=fts5_match(query)))
        elif kind == "tsvector":
            expression, params = tsquery_sql(query)
            rank = func.ts_rank(literal_column("items.search_vector"),
                                text(expression).bindparams(**params), 1)
            source, conditions = items, [*conditions, _tsvector_condition(query)]
        else:  # no index, no rank: newest first
            rank, source = literal(0.0), items
            conditions.append(_substring_condition(conn, query))
        key = ITEMS_FTS.c.rowid if source is ITEMS_FTS else items.c.id
        ranked = conn.execute(
            select(key.label("id"), rank.label("rank")).select_from(source)
            .where(and_(*conditions)).order_by(desc("rank"), key.desc())
            .limit(limit).offset(offset)).all()
        if not ranked:
            return []
        by_id = {row.id: listed_item(row._mapping) for row in conn.execute(newest_items_select(
            ItemSelection(), limit=None, text="full",
            extra=[items.c.id.in_([row.id for row in ranked])]))}
    found = [{**by_id[row.id], "rank": float(f"{row.rank:.4g}")}
             for row in ranked if row.id in by_id]
    return _with_excerpts(found, query)


@storage_errors
def match_condition(engine: Engine, query: Query) -> ColumnElement:
    """A WHERE term on `items` true for the items matching `query` (to count, page back or
    export a search's items with the listings' functions)."""
    with engine.connect() as conn:
        kind = _index_kind(conn)
        if kind == "fts5":
            return items.c.id.in_(select(ITEMS_FTS.c.rowid).where(
                text("items_fts MATCH :fts_query").bindparams(fts_query=fts5_match(query))))
        if kind == "tsvector":
            return _tsvector_condition(query)
        return _substring_condition(conn, query)


def _matches_select(conn: Connection, selection: ItemSelection, query: Query, limit: int,
                    text_part: TextPart) -> Select:
    """The listing of the selected items that match `query`, in the selection's order."""
    kind = _index_kind(conn)
    if kind == "fts5":  # the index drives the scan, newest match first
        return newest_items_select(
            selection, limit=limit, text=text_part,
            extra=[text("items_fts MATCH :fts_query").bindparams(fts_query=fts5_match(query))],
            order_column=ITEMS_FTS.c.rowid,
            source=ITEMS_FTS.join(items, items.c.id == ITEMS_FTS.c.rowid).outerjoin(
                feeds, feeds.c.id == items.c.feed_id))
    condition = (_tsvector_condition(query) if kind == "tsvector"
                 else _substring_condition(conn, query))
    return newest_items_select(selection, limit=limit, text=text_part, extra=[condition],
                               source=ITEMS_WITH_FEED)


def _with_excerpts(rows: list[dict], query: Query) -> list[dict]:
    """Each row's ``text`` cut to the excerpt around its first hit, and the ``hits`` in it."""
    words, typed = query.words(), query.typed()
    for item in rows:
        item["text"], item["hits"] = excerpt(item["text"], words, typed)
    return rows


@storage_errors
def index_kind(engine: Engine) -> str | None:
    """Which full-text index this database has: "fts5", "tsvector", or None (substrings)."""
    key = engine.url.render_as_string(hide_password=False)
    if key in _INDEX_KIND:
        return _INDEX_KIND[key]
    with engine.connect() as conn:
        return _index_kind(conn)


def _index_kind(conn: Connection) -> str | None:
    """Looked up once per database."""
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


def _tsvector_condition(query: Query) -> ColumnElement:
    expression, params = tsquery_sql(query)
    return text(f"items.search_vector @@ ({expression})").bindparams(**params)


def _substring_condition(conn: Connection, query: Query) -> ColumnElement:
    """Every clause (one of its phrases) in the title or the text, no excluded phrase."""
    postgres = conn.dialect.name == "postgresql"

    def contains(phrase: tuple[str, ...]) -> ColumnElement:
        pattern = f"%{like_pattern(' '.join(phrase).rstrip('*'))}%"
        if postgres:
            return or_(items.c.title.ilike(pattern, escape="\\"),
                       items.c.text.ilike(pattern, escape="\\"))
        return or_(items.c.title.like(pattern, escape="\\"),
                   items.c.text.like(pattern, escape="\\"))

    terms = [or_(*[contains(phrase) for phrase in clause]) for clause in query.clauses]
    terms += [not_(contains(phrase)) for phrase in query.excluded]
    return and_(*terms)
