"""The inspector's totals and facets ("50 of 433"; counts per topic, language and feed), kept
cheap at any size. Does I/O (read only, through the store).

In: a read-only `Engine`, the page's `ItemFilters`. Out: `store.facets.Facets`. A selection by
relevance, topic, feed and language is answered exactly from a summary of the whole table
(`store.facets.facet_summary`), made once and then again in the background when it is older
than `max_age` seconds, so no page waits for the scan but the first one; a selection by dates or
a search is counted live over its first `store.facets.CAP` items.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from monitor.errors import StorageError
from monitor.store.engine import Engine
from monitor.store.facets import (
    CAP,
    COUNT_CAP,
    Facets,
    SummaryRow,
    answers,
    facet_summary,
    facets_of_rows,
)
from monitor.store.listings import count_selected, newest_items
from monitor.store.search import matching_items
from monitor.textsearch import Query
from monitor.web.filters import ItemFilters

MAX_AGE = 30.0  # seconds a summary is used before it is made again (in the background)
MAX_ANSWERS = 1000  # selections whose facets are kept


class FacetCounts:
    """Totals and facets of item selections over one database."""

    def __init__(self, engine: Engine, *, max_age: float = MAX_AGE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.engine, self.max_age, self.clock = engine, max_age, clock
        self._summary: list[SummaryRow] | None = None
        self._made_at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False
        self._answers: dict[tuple, Facets] = {}  # facets per summary and selection

    def of(self, filters: ItemFilters, query: Query | None = None) -> Facets:
        """The facets of the selection `filters` (and of the search `query`, if any)."""
        if query is not None:  # counted in the index's order, which stops at the cap
            matches = matching_items(self.engine, replace(filters, sort="kept", before=None),
                                     query, limit=CAP + 1)
            return facets_of_rows(matches, cap=CAP)
        if not answers(filters):
            facets = facets_of_rows(newest_items(self.engine, filters, limit=CAP + 1,
                                                 text=None), cap=CAP)
            if facets.capped:
                facets.total = count_selected(self.engine, filters, cap=COUNT_CAP)
                facets.capped = facets.total == COUNT_CAP
            return facets
        summary = self.summary()
        key = (id(summary), filters.relevant, filters.topic, filters.feed, filters.lang)
        with self._lock:
            known = self._answers.get(key)
        if known is None:  # the same facets are asked for again until the summary is new
            known = Facets.of_summary(summary, filters)
            with self._lock:
                if len(self._answers) >= MAX_ANSWERS:
                    self._answers.clear()
                self._answers[key] = known
        return known

    def summary(self) -> list[SummaryRow]:
        """The current summary: made now the first time, else the last one made (a new one is
        started in the background when it is older than `max_age`)."""
        with self._lock:
            summary, stale = self._summary, self.clock() - self._made_at > self.max_age
            start = summary is not None and stale and not self._refreshing
            if start:
                self._refreshing = True
        if summary is None:
            return self._refresh()
        if start:
            threading.Thread(target=self._refresh_quietly, name="facet-summary",
                             daemon=True).start()
        return summary

    def _refresh_quietly(self) -> None:
        with contextlib.suppress(StorageError):  # the last summary stays
            self._refresh()

    def _refresh(self) -> list[SummaryRow]:
        try:
            summary = facet_summary(self.engine)
            with self._lock:
                self._summary, self._made_at = summary, self.clock()
                self._answers.clear()
            return summary
        finally:
            with self._lock:
                self._refreshing = False
