"""Totals and facets of item listings: how many items a selection holds, and how many of them per
topic, language and feed. Does I/O (read only).

In: an `Engine` and an `ItemSelection`. Out: `Facets` (plain data). Two ways, by cost:

- `facet_summary`: the items counted per (relevant, feed, language, topics) in one grouped scan
  of the table, a few thousand rows at most whatever the number of items; `Facets.of_summary`
  then answers any selection by relevance, topic, feed and language exactly, in Python. The
  scan reads every row (about 340 ms at 100,000 items on SQLite), so the inspector keeps a
  summary and makes it again in the background (`web.facets`).
- `facets_of_rows`: the facets of given rows (the first `CAP` items of a listing that filters on
  dates or searches, which a summary cannot answer), marked ``capped`` when there were more;
  the total of a dated selection is then counted on its own (`listings.count_selected`, on the
  publication index, up to `COUNT_CAP`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine, Text, cast, func, select

from monitor.store.engine import storage_errors
from monitor.store.listings import ItemSelection
from monitor.store.schema import items

CAP = 200  # the items whose facets are counted when a summary cannot answer
COUNT_CAP = 10_000  # the items counted for the total of a dated selection


@dataclass(frozen=True)
class SummaryRow:
    relevant: bool
    feed_id: int | None
    lang: str | None
    topics: tuple[str, ...]
    count: int


@dataclass
class Facets:
    """``total`` items, and per ``topic``, ``lang`` and ``feed`` (id) value how many of them;
    ``capped``: the total is "at least"; ``sampled``: the facets counted over that many items
    only (the first of the listing), else None."""

    total: int = 0
    topic: Counter = field(default_factory=Counter)
    lang: Counter = field(default_factory=Counter)
    feed: Counter = field(default_factory=Counter)
    capped: bool = False
    sampled: int | None = None

    def add(self, topics: Iterable[str], lang: str | None, feed_id: int | None, n: int) -> None:
        self.total += n
        for topic in topics:
            self.topic[topic] += n
        self.lang[lang] += n
        self.feed[feed_id] += n

    @classmethod
    def of_summary(cls, summary: Iterable[SummaryRow], selection: ItemSelection) -> Facets:
        """Exact facets of `selection` (relevance, topic, feed and language; its dates and
        cursor are not looked at) from a `facet_summary`."""
        out = cls()
        for row in summary:
            if ((selection.relevant is None or row.relevant == selection.relevant)
                    and (not selection.topic or selection.topic in row.topics)
                    and (selection.feed is None or row.feed_id == selection.feed)
                    and (not selection.lang or row.lang == selection.lang)):
                out.add(row.topics, row.lang, row.feed_id, row.count)
        return out


def answers(selection: ItemSelection) -> bool:
    """Whether a summary answers `selection` exactly (no date filter)."""
    return not (selection.since or selection.until or selection.published_since
                or selection.published_until)


@storage_errors
def facet_summary(engine: Engine) -> list[SummaryRow]:
    """Every item counted once, per (relevant, feed id, language, topics)."""
    topics = cast(items.c.topics, Text)  # PostgreSQL groups no json values
    query = (select(items.c.relevant, items.c.feed_id, items.c.lang, topics.label("topics"),
                    func.count().label("n"))
             .group_by(items.c.relevant, items.c.feed_id, items.c.lang, topics))
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [SummaryRow(bool(r.relevant), r.feed_id, r.lang, _topics(r.topics), int(r.n))
            for r in rows]


def facets_of_rows(rows: Iterable[dict], *, cap: int = CAP) -> Facets:
    """The facets of listed items (dicts with ``topics``, ``lang``, ``feed_id``), the first
    `cap` of them; ``capped`` when there were more."""
    out = Facets()
    for number, row in enumerate(rows):
        if number == cap:
            out.capped, out.sampled = True, cap
            break
        out.add(row["topics"], row["lang"], row["feed_id"], 1)
    return out


def _topics(stored: str | None) -> tuple[str, ...]:
    """The JSON list of topics, as text from the database, as a tuple."""
    return tuple(json.loads(stored)) if stored else ()
