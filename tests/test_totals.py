"""Totals on both backends: one definition of an active feed for `monitor stats`, /metrics and
the claims, so a feed stopped by 410 Gone is neither active nor due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.settings import FeedSpec
from monitor.store.engine import create_schema, make_engine
from monitor.store.feeds import claim_due_feeds, sync_feeds
from monitor.store.polls import PollRecord, record_polls
from monitor.store.totals import metric_figures, totals
from monitor.web.metrics import DURATION_BUCKETS

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
PAST = NOW - timedelta(hours=1)


def test_a_feed_stopped_by_410_is_neither_active_nor_due(database_url: str) -> None:
    engine = make_engine(database_url)
    create_schema(engine)
    sync_feeds(engine, [FeedSpec(url=f"https://site{n}.ma/rss", name=f"site {n}")
                        for n in range(3)] + [
        FeedSpec(url="https://off.ma/rss", name="off", enabled=False)], PAST)
    gone, failing, fine = claim_due_feeds(engine, owner="w:1:a", now=PAST, limit=10,
                                          lease_until=PAST + timedelta(minutes=5))
    # all three are due again by now; the gone one was stopped (410) and has failed once
    record_polls(engine, [
        (PollRecord(feed_id=gone.id, started_at=PAST, finished_at=PAST, status="error",
                    next_due=PAST, http_status=410, error_reason="http-410",
                    error_message="410 Gone", disabled_reason="gone: answered 410 Gone",
                    worker="w:1:a"), 1),
        (PollRecord(feed_id=failing.id, started_at=PAST, finished_at=PAST, status="error",
                    next_due=PAST, error_reason="timeout", error_message="timed out",
                    worker="w:1:a"), 1),
        (PollRecord(feed_id=fine.id, started_at=PAST, finished_at=PAST, status="ok",
                    next_due=PAST, worker="w:1:a"), 0),
    ])
    stats = totals(engine)
    assert (stats["feeds"], stats["active_feeds"]) == (4, 2)
    figures = metric_figures(engine, now=NOW, buckets=DURATION_BUCKETS)
    assert (figures["feeds"], figures["active_feeds"]) == (4, 2)
    assert figures["due_feeds"] == 2  # the stopped feed is overdue, yet not in the queue
    assert figures["failing_feeds"] == 1  # it failed, but is no longer polled
    # what is counted as due is what a worker claims
    claimed = claim_due_feeds(engine, owner="w:2:b", now=NOW, limit=10,
                              lease_until=NOW + timedelta(minutes=5))
    assert sorted(feed.id for feed in claimed) == sorted([failing.id, fine.id])
    engine.dispose()
