"""One context builder per page; the HTML template and the ``.json`` twin render the same dict.

In: a read-only `Engine`, parsed `ItemFilters` or an id, the current rules. Out: plain dicts
(JSON-ready: strings, numbers, lists). Does I/O (read only) through the store's listings,
search, totals and feed health; the rows are shaped here, each page showing the keys it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from monitor.alerts.status import alert_status, failing_after
from monitor.alertsettings import AlertSettings
from monitor.rules import RuleSet, stored_parts
from monitor.rules.ruleset import TOPICS
from monitor.settings import ScheduleSettings
from monitor.store.engine import Engine
from monitor.store.health import feed_health
from monitor.store.labels import latest_label
from monitor.store.listings import (
    copies_elsewhere,
    feed_choices,
    item_by_id,
    newest_items,
    other_sources,
)
from monitor.store.outbox import alert_figures
from monitor.store.search import index_kind, newest_matches
from monitor.store.totals import daily_counts
from monitor.textsearch import parse_query
from monitor.web.charts import day_series
from monitor.web.filters import BadParameter, ItemFilters
from monitor.web.highlight import segments

LANGUAGES = ("fr", "ar", "en")
RTL_LANGUAGES = frozenset({"ar", "fa", "he", "ur"})
# The keys of a listed item in the listings (and their JSON twins); a search adds its ``hits``.
LISTED_KEYS = ("id", "url", "title", "feed_id", "feed", "published", "fetched_at", "lang",
               "relevant", "score", "topics", "text_source", "text_error", "text")


def items_page(engine: Engine, filters: ItemFilters, rules: RuleSet | None) -> dict:
    """The listing: one keyset page, the filters in force, the next page and the choices."""
    # one row more than the page: it says whether there is a next page
    if filters.q:
        try:
            query = parse_query(filters.q)
        except ValueError as exc:
            raise BadParameter("q", str(exc)) from None
        found = newest_matches(engine, filters, query, limit=filters.limit + 1)
        method = index_kind(engine) or "substring"
    else:
        found = list(newest_items(engine, filters, limit=filters.limit + 1))
        method = None
    choices = feed_choices(engine)
    more = len(found) > filters.limit
    keys = LISTED_KEYS + (("hits",) if filters.q else ())
    rows = [{key: row[key] for key in keys} for row in found[: filters.limit]]
    for row in rows:
        row["dir"] = text_direction(row["lang"])
    next_page = None
    if more:
        query = filters.query_string(before=rows[-1]["id"])
        next_page = {"before": rows[-1]["id"], "html": f"/items{query}",
                     "json": f"/items.json{query}"}
    topics = sorted({r.topic for r in rules.spec.rules if r.topic} if rules else set(TOPICS))
    langs = sorted(set(LANGUAGES) | {f["lang"] for f in choices if f["lang"]})
    return {
        "page": "items",
        "filters": filters.active,
        "before": filters.before,
        "limit": filters.limit,
        "search": {"q": filters.q, "index": method} if filters.q else None,
        "items": rows,
        "count": len(rows),
        "next": next_page,
        "first": ({"html": f"/items{filters.query_string(before=None)}",
                   "json": f"/items.json{filters.query_string(before=None)}"}
                  if filters.before else None),
        "choices": {"feeds": choices, "topics": topics, "langs": langs},
    }


def item_page(engine: Engine, item_id: int, rules: RuleSet | None) -> dict | None:
    """One item: its columns, its title and text cut into highlight segments, the score built up
    rule by rule with the current rules, the analyst's label (None: not labelled), and where
    else the story was published. None if absent."""
    item = item_by_id(engine, item_id)
    if item is None:
        return None
    sources = other_sources(engine, item)
    copies = copies_elsewhere(engine, item)
    matches = item["matches"]
    return {
        "page": "item",
        "item": item,
        "dir": text_direction(item["lang"]),
        "title_segments": segments(item["title"], matches, field="title"),
        "text_segments": segments(item["text"], matches, field="body"),
        "terms": term_counts(matches),
        "explanation": explain(rules, item),
        "label": label.as_dict() if (label := latest_label(engine, item_id)) else None,
        # other feeds that brought this very item, then other items of the same story
        "other_sources": sources,
        "also_published": copies,
        "also_published_by": "other feeds' entries stored as this item (same URL or same "
                             "text); other items with the same text or in the same "
                             "near-duplicate cluster",
    }


def term_counts(matches: list[dict]) -> list[dict]:
    counts: dict[str, dict] = {}
    for match in matches:
        entry = counts.setdefault(match["term"], {"term": match["term"], "group": match["group"],
                                                  "count": 0})
        entry["count"] += 1
    return sorted(counts.values(), key=lambda e: (-e["count"], e["term"]))


def explain(rules: RuleSet | None, item: dict) -> dict | None:
    """The current rules applied to the item's title and text, rule by rule, with the running
    total; None when the rules cannot be loaded."""
    if rules is None:
        return None
    verdict = rules.classify(*stored_parts(item["title"], item["text"], item["text_source"]))
    steps, total = [], 0.0
    for outcome in verdict.rules:
        if outcome.fired:
            total += outcome.weight
        steps.append({"rule": outcome.name, "topic": outcome.topic, "weight": outcome.weight,
                      "fired": outcome.fired, "why": outcome.why, "hits": outcome.hits,
                      "total": round(total, 4)})
    return {"rules_version": verdict.version, "same_as_stored":
            verdict.version == item["rules_version"], "score": verdict.score,
            "threshold": verdict.threshold, "relevant": verdict.relevant,
            "topics": list(verdict.topics), "steps": steps}


def feeds_page(engine: Engine, *, days: int = 30, today: date | None = None,
               schedule: ScheduleSettings | None = None,
               alerts: Sequence[AlertSettings] = ()) -> dict:
    """Every feed's health and yield, items / relevant items per day over `days` days, and the
    configured alerts (`alerts_shown`).

    Health (unhealthy, stopped, moved, the interval in effect) follows `schedule`, the
    settings' schedule section; without it, the defaults."""
    schedule = schedule or ScheduleSettings()
    today = today or datetime.now(UTC).date()
    first_day = today - timedelta(days=days - 1)
    counts = daily_counts(engine, first_day)
    rows = []
    overall: dict[str, list[int]] = {}
    for feed_id, per_day in counts.items():
        if feed_id is None:  # the seed corpus, imported by `monitor init`
            continue
        for day, (n, r) in per_day.items():
            total = overall.setdefault(day, [0, 0])
            total[0] += n
            total[1] += r
    for feed in feed_health(engine, schedule):
        per_day = counts.get(feed["id"], {})
        in_window = sum(n for n, _ in per_day.values())
        rows.append({
            **feed,
            "items_per_day": round(in_window / days, 2),
            "relevant_share": (round(feed["relevant_items"] / feed["items"], 3)
                               if feed["items"] else None),
            "days": day_series(first_day, today, per_day),
        })
    return {
        "page": "feeds",
        "days": days, "first_day": first_day.isoformat(), "last_day": today.isoformat(),
        "feeds": rows,
        "totals": {"items": sum(f["items"] for f in rows),
                   "relevant_items": sum(f["relevant_items"] for f in rows),
                   "days": day_series(first_day, today, overall)},
        "alerts": alerts_shown(engine, alerts),
    }


def alerts_shown(engine: Engine, alerts: Sequence[AlertSettings]) -> list[dict]:
    """Each configured alert with its outbox's figures, its addresses masked."""
    if not alerts:
        return []
    return alert_status(alerts, alert_figures(engine, failing_after(alerts)))


def text_direction(lang: str | None) -> str:
    """'rtl' for right-to-left languages, else 'auto' (the browser looks at the text)."""
    return "rtl" if (lang or "").split("-")[0] in RTL_LANGUAGES else "auto"
