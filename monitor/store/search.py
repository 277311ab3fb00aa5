"""Full-text search over stored items, best match first, with snippets. Does I/O (read only).

In: a `Query` (see `textsearch.py`) and filters. Out: dicts shaped like `items list --json`
plus ``rank`` (higher is better) and ``snippet``. The index is the database's own, made and
kept up to date by migration 0003: on SQLite the FTS5 table ``items_fts`` (unicode61 tokens,
diacritics removed), ranked by bm25 with the title weighing 4 times the text; on PostgreSQL the
generated column ``items.search_vector`` with its GIN index ('simple' configuration, accents of
Latin letters folded by the same translate() as the column), ranked by ts_rank with the title
in weight class A and the text in B. `ranked_ids` is the query alone, for callers that add
their own filters or pages.
"""

from __future__ import annotations

from sqlalchemy import Connection, Engine, select, text

from monitor.store.items import _LIST_COLUMNS, _item_dict
from monitor.store.schema import feeds, items
from monitor.textsearch import Query, fts5_match, snippet

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


def ranked_ids(conn: Connection, query: Query, *, relevant: bool | None = None,
               limit: int = 20, offset: int = 0) -> list[tuple[int, float]]:
    """(item id, rank) of the best matches, best first."""
    only = "" if relevant is None else f" AND items.relevant = {'true' if relevant else 'false'}"
    if conn.dialect.name == "postgresql":
        tsquery, params = tsquery_sql(query)
        sql = (f"SELECT items.id, ts_rank(items.search_vector, q.query, 1) AS rank "
               f"FROM items, (SELECT {tsquery} AS query) AS q "
               f"WHERE items.search_vector @@ q.query{only} "
               "ORDER BY rank DESC, items.id DESC LIMIT :limit OFFSET :offset")
    else:
        params = {"match": fts5_match(query)}
        only = only.replace("true", "1").replace("false", "0")
        sql = (f"SELECT items.id, -bm25(items_fts, {TITLE_WEIGHT}, 1.0) AS rank "
               "FROM items_fts JOIN items ON items.id = items_fts.rowid "
               f"WHERE items_fts MATCH :match{only} "
               "ORDER BY rank DESC, items.id DESC LIMIT :limit OFFSET :offset")
    rows = conn.execute(text(sql), {**params, "limit": limit, "offset": offset})
    return [(row[0], float(row[1])) for row in rows]


def tsquery_sql(query: Query) -> tuple[str, dict]:
    """The query as a tsquery expression (phrases as bound parameters) and its parameters."""
    params = {"fold_from": FOLD_FROM, "fold_to": FOLD_TO}

    def phrase(words: tuple[str, ...]) -> str:
        name = f"p{len(params)}"
        params[name] = " ".join(words)
        return (f"phraseto_tsquery('simple'::regconfig, translate(:{name}, :fold_from, "
                ":fold_to))")

    expression = " && ".join(
        "(" + " || ".join(phrase(p) for p in clause) + ")" for clause in query.clauses
    )
    for words in query.excluded:
        expression = f"({expression}) && !!{phrase(words)}"
    return expression, params


def search_items(engine: Engine, query: Query, *, relevant: bool | None = None,
                 limit: int = 20) -> list[dict]:
    """The `limit` best items for `query`, best first, each with its rank and a snippet."""
    with engine.connect() as conn:
        ranked = ranked_ids(conn, query, relevant=relevant, limit=limit)
        if not ranked:
            return []
        columns = [*_LIST_COLUMNS, items.c.text]
        rows = conn.execute(
            select(*columns).select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
            .where(items.c.id.in_([item_id for item_id, _ in ranked]))
        )
        by_id = {row.id: row._mapping for row in rows}
    words = query.words()
    found = []
    for item_id, rank in ranked:
        row = by_id.get(item_id)
        if row is None:  # deleted meanwhile
            continue
        item = _item_dict(row)
        item.pop("text", None)
        item["rank"] = float(f"{rank:.4g}")
        item["snippet"] = snippet(row["text"], words) or snippet(row["title"], words)
        found.append(item)
    return found
