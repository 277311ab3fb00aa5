"""The items page's context: one page of a listing or a search, its total and facets, the links to
the pages around it and to its exports. Does I/O (read only) through the store.

In: a read-only `Engine`, parsed `ItemFilters`, the current rules, the `FacetCounts` of the
database and how many feeds feeds.yaml lists. Out: a plain dict (JSON-ready), which the HTML
template and the ``.json`` twin both render.
"""

from __future__ import annotations

from monitor.rules import RuleSet
from monitor.rules.ruleset import TOPICS
from monitor.store.engine import Engine
from monitor.store.facets import Facets
from monitor.store.listings import feed_choices, newest_items, previous_page
from monitor.store.search import index_kind, match_condition, newest_matches, ranked_matches
from monitor.textsearch import Query, parse_query
from monitor.web.facets import FacetCounts
from monitor.web.filters import MATCH, SORTS, BadParameter, ItemFilters

LANGUAGES = ("fr", "ar", "en")
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})
# The keys of a listed item in the listings (and their JSON twins); a search adds its ``hits``.
LISTED_KEYS = ("id", "url", "title", "feed_id", "feed", "published", "fetched_at",
               "published_at", "lang", "relevant", "score", "topics", "text_source",
               "text_error", "text")
SORT_LABELS = {"published": "newest published", "kept": "newest kept", "score": "best score",
               MATCH: "best match"}
FACET_VALUES = 8  # values shown per facet before "more"


def items_page(engine: Engine, filters: ItemFilters, rules: RuleSet | None, *,
               counts: FacetCounts | None = None, configured_feeds: int = 0) -> dict:
    """The listing: one page in the order asked for, the filters in force, the total and the
    facets of the selection, the pages around it, the exports and the filter choices."""
    query = parsed_query(filters.q)
    # one row more than the page: it says whether there is a next page
    if query is None:
        found = list(newest_items(engine, filters, limit=filters.limit + 1))
    elif filters.ranked:
        found = ranked_matches(engine, filters, query, limit=filters.limit + 1,
                               offset=filters.start)
    else:
        found = newest_matches(engine, filters, query, limit=filters.limit + 1)
    keys = LISTED_KEYS + (("hits",) if query else ()) + (("rank",) if filters.ranked else ())
    rows = [{key: row[key] for key in keys} for row in found[: filters.limit]]
    for row in rows:
        row["dir"] = text_direction(row["lang"])
        row["text"], hits = without_title(row["text"], row["title"], row.get("hits"))
        if query:
            row["hits"] = hits
    choices = feed_choices(engine)
    facets = (counts or FacetCounts(engine)).of(filters, query)
    topics = sorted({r.topic for r in rules.spec.rules if r.topic} if rules else set(TOPICS))
    langs = sorted(set(LANGUAGES) | {f["lang"] for f in choices if f["lang"]})
    feed_names = {f["id"]: f["name"] for f in choices}
    return {
        "page": "items",
        "filters": filters.active,
        "sort": filters.order,
        "sorts": [{"value": s, "label": SORT_LABELS[s]} for s in SORTS + ((MATCH,) if query
                                                                           else ())],
        "before": filters.before,
        "start": filters.start,
        "limit": filters.limit,
        "search": {"q": filters.q, "index": index_kind(engine) or "substring"}
        if query else None,
        "items": rows,
        "count": len(rows),
        "total": {"count": facets.total, "at_least": facets.capped,
                  "facets_of_first": facets.sampled},
        "facets": facet_links(filters, facets, feed_names),
        **pages_around(engine, filters, query, rows, more=len(found) > filters.limit),
        "exports": {fmt: f"/items.{fmt}{filters.query_string(before=None, start=0, limit=50)}"
                    for fmt in ("csv", "jsonl")},
        "stored_nothing": facets.total == 0 and not filters.active,
        "configured_feeds": configured_feeds,
        "choices": {"feeds": choices, "topics": topics, "langs": langs},
    }


def parsed_query(q: str | None) -> Query | None:
    """The search typed, parsed; None without one. Raises `BadParameter` (``q``)."""
    if not q:
        return None
    try:
        return parse_query(q)
    except ValueError as exc:
        raise BadParameter("q", str(exc)) from None


def pages_around(engine: Engine, filters: ItemFilters, query: Query | None, rows: list[dict], *,
                 more: bool) -> dict:
    """``next`` (older, or worse matches), ``previous`` and ``first`` page links (None when
    there is no such page), each as ``{"html", "json"}``."""

    def link(**changes) -> dict:
        params = filters.query_string(**changes)
        return {"html": f"/items{params}", "json": f"/items.json{params}"}

    if filters.ranked:
        return {"next": link(start=filters.start + filters.limit) if more else None,
                "previous": link(start=max(filters.start - filters.limit, 0))
                if filters.start else None,
                "first": link(start=0) if filters.start else None}
    previous = None
    if filters.before is not None:
        above = None
        if rows:
            extra = [match_condition(engine, query)] if query else []
            above = previous_page(engine, filters, rows[0]["id"], limit=filters.limit,
                                  extra=extra)
        previous = link(before=above)
    return {"next": link(before=rows[-1]["id"]) if more else None, "previous": previous,
            "first": link(before=None) if filters.before is not None else None}


def facet_links(filters: ItemFilters, facets: Facets, feed_names: dict[int, str]) -> dict:
    """Per facet (topic, lang, feed): its values, most items first, each with its count, its
    ``label``, whether it is the filter in force, and the link that applies it (or, when in
    force, removes it)."""
    out = {}
    for name, counter in (("topic", facets.topic), ("lang", facets.lang),
                          ("feed", facets.feed)):
        current = getattr(filters, name)
        values = []
        for value, count in sorted(counter.items(), key=lambda v: (-v[1], str(v[0]))):
            if value is None:  # no language, or the seed corpus: nothing to filter by
                continue
            active = value == current
            params = filters.query_string(before=None, start=0, **{name: None if active
                                                                   else value})
            values.append({"value": value, "count": count, "active": active,
                           "label": feed_names.get(value, f"#{value}") if name == "feed"
                           else value, "href": f"/items{params}"})
        out[name] = values
    return out


def without_title(text: str, title: str, hits: list[list[int]] | None = None
                  ) -> tuple[str, list[list[int]]]:
    """An excerpt without the title it often starts with (the page's text repeats its
    headline), and its hit spans moved to match; hits inside the cut are dropped."""
    head = title.strip()
    stripped = text.lstrip()
    if not head or not stripped.startswith(head):
        return text, list(hits or [])
    cut = len(text) - len(stripped) + len(head)
    rest = text[cut:]
    cut += len(rest) - len(rest.lstrip(" \t\r\n.:|-–—"))
    return text[cut:], [[s - cut, e - cut] for s, e in (hits or []) if s >= cut]


def text_direction(lang: str | None) -> str:
    """'rtl' for right-to-left languages, else 'auto' (the browser looks at the text)."""
    return "rtl" if (lang or "").split("-")[0] in RTL_LANGUAGES else "auto"
