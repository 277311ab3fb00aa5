"""One context builder per page; the HTML template and the ``.json`` twin render the same dict
(the items listing's is in `listing`).

In: a read-only `Engine`, an item id and the current rules, or the feeds' settings. Out: plain dicts
(JSON-ready: strings, numbers, lists). Does I/O (read only) through the store's listings,
search, totals and feed health; the rows are shaped here, each page showing the keys it shows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from monitor.alerts.status import alert_status, failing_after
from monitor.alertsettings import AlertSettings
from monitor.rules import RuleSet, stored_parts
from monitor.settings import FeedSpec, ScheduleSettings
from monitor.store.engine import Engine
from monitor.store.health import feed_health, page_errors_since
from monitor.store.labels import latest_label
from monitor.store.listings import (
    copies_elsewhere,
    day_start,
    item_by_id,
    other_sources,
)
from monitor.store.outbox import alert_figures
from monitor.store.totals import daily_counts
from monitor.web.charts import day_series
from monitor.web.highlight import group_legend, penalty_groups, segments, with_colours
from monitor.web.listing import text_direction

PAGES_FAILING = 0.5  # a feed whose article pages fail this often is flagged


def item_page(engine: Engine, item_id: int, rules: RuleSet | None) -> dict | None:
    """One item: its columns, its title and text cut into highlight segments coloured by group
    (the `legend` numbers the groups and marks the penalty ones), the score built up rule by
    rule with the current rules, the analyst's label (None: not labelled), and where else the
    story was published. None if absent."""
    item = item_by_id(engine, item_id)
    if item is None:
        return None
    sources = other_sources(engine, item)
    copies = copies_elsewhere(engine, item)
    matches = item["matches"]
    legend = group_legend(matches, penalty_groups(rules.spec) if rules else frozenset())
    return {
        "page": "item",
        "item": item,
        "dir": text_direction(item["lang"]),
        "title_segments": with_colours(segments(item["title"], matches, field="title"), legend),
        "text_segments": with_colours(segments(item["text"], matches, field="body"), legend),
        "legend": legend,
        "explanation": explain(rules, item),
        "label": label.as_dict() if (label := latest_label(engine, item_id)) else None,
        # other feeds that brought this very item, then other items of the same story
        "other_sources": sources,
        "also_published": copies,
        "also_published_by": "other feeds' entries stored as this item (same URL or same "
                             "text); other items with the same text or in the same "
                             "near-duplicate cluster",
    }


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
               alerts: Sequence[AlertSettings] = (),
               configured: Sequence[FeedSpec] | None = None) -> dict:
    """Every feed's health and yield, its page-error rate, and items / relevant items per day
    over `days` days; with `configured` (feeds.yaml's feeds), those never polled too; and the
    configured alerts (`alerts_shown`).

    Health (unhealthy, stopped, moved, the interval in effect) follows `schedule`, the
    settings' schedule section; without it, the defaults. A feed whose article pages fail
    `PAGES_FAILING` of the time or more over the window is flagged ``pages_failing``."""
    schedule = schedule or ScheduleSettings()
    today = today or datetime.now(UTC).date()
    first_day = today - timedelta(days=days - 1)
    counts = daily_counts(engine, first_day)
    page_errors = page_errors_since(engine, day_start(first_day))
    rows = []
    overall: dict[str, list[int]] = {}
    for feed_id, per_day in counts.items():
        if feed_id is None:  # the seed corpus, imported by `monitor init`
            continue
        for day, (n, r) in per_day.items():
            total = overall.setdefault(day, [0, 0])
            total[0] += n
            total[1] += r
    for feed in feed_health(engine, schedule, configured):
        per_day = counts.get(feed["id"], {}) if feed["id"] is not None else {}
        in_window = sum(n for n, _ in per_day.values())
        pages = page_errors.get(feed["id"], {"pages": 0, "page_errors": 0})
        rate = round(pages["page_errors"] / pages["pages"], 3) if pages["pages"] else None
        rows.append({
            **feed,
            "items_per_day": round(in_window / days, 2),
            "relevant_share": (round(feed["relevant_items"] / feed["items"], 3)
                               if feed["items"] else None),
            **pages, "page_error_rate": rate,
            "pages_failing": rate is not None and rate >= PAGES_FAILING,
            "days": day_series(first_day, today, per_day),
        })
    return {
        "page": "feeds",
        "days": days, "first_day": first_day.isoformat(), "last_day": today.isoformat(),
        "feeds": rows, "pages_failing": PAGES_FAILING,
        "never_polled": sum(1 for f in rows if f["last_poll"] is None and f["enabled"]),
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

