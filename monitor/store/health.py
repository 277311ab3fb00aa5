"""Feed health: every feed with its last poll, streak, state and yield. Does I/O (read only).

In: an `Engine`, the schedule settings and, optionally, the feeds of feeds.yaml as they are now.
Out: one dict per feed (`feeds list --json`, the inspector's feeds page), stored feeds first
(by id), then the configured feeds never stored yet (``id`` None, never polled); and, by
`page_errors_since`, each feed's article pages read and failed over a time window.

Given feeds.yaml, the stored rows are shown as the next sync will make them, without writing:
a changed entry with its new settings and a fresh start (no longer stopped nor moved), a feed
gone from the file as retired; ``next_due`` None means due as soon as the daemon syncs. So
`feeds list` reads the database and never writes it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, case, func, select

from monitor.schedule import success_delay
from monitor.settings import FeedSpec, ScheduleSettings
from monitor.store.engine import storage_errors
from monitor.store.feeds import configured_values, resynced_values
from monitor.store.schema import feeds, items, polls


@storage_errors
def feed_health(engine: Engine, schedule: ScheduleSettings,
                configured: Sequence[FeedSpec] | None = None) -> Iterator[dict]:
    """Every feed with its health and yield, in the order feeds were added.

    Besides the last poll: ``unhealthy`` (``schedule.unhealthy_after`` failures or more in a
    row), ``disabled_reason`` (why monitor stopped polling it), ``fetch_url`` (where it moved
    to, else None), and the ``interval`` in effect after a good poll with its
    ``interval_source``: configured (feeds.yaml), adaptive (learnt), or default. With
    `configured` (feeds.yaml's feeds), the rows as the next sync makes them (see above)."""
    item_counts = (
        select(items.c.feed_id, func.count().label("item_count"),
               func.sum(case((items.c.relevant.is_(True), 1), else_=0)).label("relevant_count"))
        .group_by(items.c.feed_id).subquery()
    )
    query = (
        select(feeds, func.coalesce(item_counts.c.item_count, 0).label("items"),
               func.coalesce(item_counts.c.relevant_count, 0).label("relevant_items"))
        .select_from(feeds.outerjoin(item_counts, item_counts.c.feed_id == feeds.c.id))
        .order_by(feeds.c.id)
    )
    specs = {spec.url: spec for spec in configured} if configured is not None else None
    with engine.connect() as conn:
        for row in conn.execute(query):
            state = dict(row._mapping)
            if specs is not None:
                _as_configured(state, row, specs.pop(row.url, None))
            yield _health(state, schedule)
    for spec in (specs or {}).values():  # in feeds.yaml, not synced yet
        yield _health(_never_stored(spec), schedule)


def _as_configured(state: dict, row: Any, spec: FeedSpec | None) -> None:
    """`state` as `sync_feeds` would leave it for this entry of feeds.yaml (None: removed)."""
    if spec is None:
        state["in_config"] = False
        return
    # a stopped feed whose entry changed is due at once (no time: shown as due)
    state.update(resynced_values(row, spec, None) or {})


def _never_stored(spec: FeedSpec) -> dict:
    return {**configured_values(spec), "id": None, "url": spec.url, "fetch_url": None,
            "disabled_reason": None, "adaptive_interval": None, "last_polled_at": None,
            "last_status": None, "last_error": None, "error_streak": 0, "next_due": None,
            "items": 0, "relevant_items": 0}


def _health(row: dict, schedule: ScheduleSettings) -> dict:
    return {
        "id": row["id"], "url": row["url"], "name": row["name"], "lang": row["lang"],
        "tags": row["tags"], "enabled": bool(row["enabled"] and row["in_config"]),
        "in_config": bool(row["in_config"]),
        "last_poll": _iso(row["last_polled_at"]), "status": row["last_status"],
        "error_streak": row["error_streak"], "last_error": row["last_error"],
        "unhealthy": row["error_streak"] >= schedule.unhealthy_after,
        "disabled_reason": row["disabled_reason"],
        "fetch_url": row["fetch_url"] if row["fetch_url"] not in (None, row["url"]) else None,
        "interval": success_delay(row["interval"], schedule, adaptive=row["adaptive_interval"]),
        "interval_source": _interval_source(row, schedule),
        "next_due": _iso(row["next_due"]), "items": int(row["items"]),
        "relevant_items": int(row["relevant_items"]),
    }


def _interval_source(row: dict, schedule: ScheduleSettings) -> str:
    if row["interval"] is not None:
        return "configured"
    if schedule.adaptive and row["adaptive_interval"] is not None:
        return "adaptive"
    return "default"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


@storage_errors
def page_errors_since(engine: Engine, since: datetime) -> dict[int, dict]:
    """Per feed id, over the polls started since `since`: ``page_errors``, the article pages
    that could not be read (the item then keeps the feed's summary), and ``pages``, the pages
    tried: one per new item (never fewer than the failures). Feeds without a poll in the window
    are absent."""
    query = (select(polls.c.feed_id, func.sum(polls.c.new_items).label("new_items"),
                    func.sum(polls.c.page_errors).label("page_errors"))
             .where(polls.c.started_at >= since).group_by(polls.c.feed_id))
    with engine.connect() as conn:
        return {row.feed_id: {"pages": max(int(row.new_items or 0), int(row.page_errors or 0)),
                              "page_errors": int(row.page_errors or 0)}
                for row in conn.execute(query)}
