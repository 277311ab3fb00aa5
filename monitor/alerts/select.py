"""Which alerts announce an item. Pure.

In: the configured `AlertSettings` and what is known of a newly relevant item (`Candidate`).
Out: the names of the alerts whose filters it passes (topics, lang, feeds, min_score; and, for
an item made relevant by `reclassify`, published within the alert's ``max_age``), in the order
they are configured. An empty filter lets everything through.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from monitor.alertsettings import AlertSettings
from monitor.settings import feed_url_key


@dataclass(frozen=True)
class Candidate:
    """A relevant item as the filters see it."""

    topics: Sequence[str]
    lang: str | None
    feed_name: str | None  # None: the seed corpus
    feed_url: str | None
    score: float
    published: datetime | None


def alerts_for(alerts: Iterable[AlertSettings], item: Candidate, *,
               published_after: datetime | None = None) -> tuple[str, ...]:
    """The alerts `item` goes to. `published_after` is for items made relevant after they were
    stored (``reclassify``): each alert then also wants them published since
    ``published_after - alert.max_age`` (`published_after` being now); an item of unknown date
    is not announced then."""
    return tuple(alert.name for alert in alerts
                 if _passes(alert, item) and _recent(alert, item, published_after))


def _passes(alert: AlertSettings, item: Candidate) -> bool:
    if alert.topics and not set(alert.topics) & set(item.topics):
        return False
    if alert.lang and (item.lang or "").split("-")[0] not in alert.lang:
        return False
    if alert.feeds and not _from_feeds(alert.feeds, item):
        return False
    return alert.min_score is None or item.score >= alert.min_score


def _from_feeds(feeds: Sequence[str], item: Candidate) -> bool:
    wanted = {feed_url_key(feed) for feed in feeds} | set(feeds)
    return item.feed_name in wanted or (item.feed_url is not None
                                        and feed_url_key(item.feed_url) in wanted)


def _recent(alert: AlertSettings, item: Candidate, now: datetime | None) -> bool:
    if now is None:
        return True
    return item.published is not None and (now - item.published).total_seconds() <= alert.max_age
