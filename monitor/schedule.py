"""Scheduling arithmetic: how often to poll a feed, and when it is next due. Pure.

In: a feed's publication dates, its <ttl>, the server's caching headers, its configured or
learnt interval, its error streak, the schedule settings and ``now``. Out: intervals and delays
in seconds, and due times.

- `adaptive_interval` learns an interval from what a feed publishes, never below what the
  feed (<ttl>, sy:updatePeriod) or the server (`server_hint_seconds`) says its content lasts;
- `success_delay`: after a good poll, the configured interval, else the learnt one, else the
  default, bounded by the minimum and maximum;
- `failure_delay`: failures back off exponentially with jitter, capped, never sooner than a
  server's Retry-After, and keep trying: a feed is never given up on silently.
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from monitor.settings import ScheduleSettings

# The newest entries the publication rate is learnt from: a day of a busy wire, a few weeks
# of a blog; older ones say little about the feed today.
RATE_WINDOW = 20
# Weight of a new observation against the previous interval, in log space: an observation
# 100x off moves the interval about 3x, and a steady rate is reached within ~15 polls.
SMOOTHING = 0.25


def success_delay(
    interval: float | None, settings: ScheduleSettings, *, adaptive: float | None = None
) -> float:
    """Delay after a good poll: the feed's configured `interval` (feeds.yaml) wins, else the
    learnt `adaptive` one (when ``settings.adaptive``), else the default; always within
    [min_interval, max_interval]."""
    if interval is not None:
        wanted = interval
    elif settings.adaptive and adaptive is not None:
        wanted = adaptive
    else:
        wanted = settings.default_interval
    return _clamp(wanted, settings)


def failure_delay(
    error_streak: int,
    interval: float | None,
    settings: ScheduleSettings,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Delay after the `error_streak`-th consecutive failure (1 for the first).

    The configured-or-default interval doubles with each failure, up to ``max_backoff``
    (or the interval itself when that is longer), times a jitter of ±10 % so feeds that failed
    together do not come back together. A server's Retry-After (429, 503) wins when longer,
    but is bounded by the longest wait monitor otherwise uses (max_interval or max_backoff):
    a bogus "come back in a year" must not silently stop a feed.
    """
    base = success_delay(interval, settings)
    backoff = min(base * 2 ** max(error_streak - 1, 0), max(settings.max_backoff, base))
    delay = backoff * (rng or random).uniform(0.9, 1.1)
    if retry_after is not None:
        longest = max(settings.max_interval, settings.max_backoff)
        delay = max(delay, min(retry_after, longest))
    return delay


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def server_hint_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """How long the server says its response stays fresh, in seconds; None when it says
    nothing usable.

    Cache-Control ``max-age`` (less the response's ``Age``, the time it already spent in a
    cache) wins over ``Expires`` (RFC 9111 §5.3). Where it is not sensible to read a freshness
    period, there is none: ``no-store`` and ``no-cache`` ask to revalidate every time (our
    conditional GET does), ``max-age=0`` or a remaining freshness of zero or less means "stale
    at once", and an unparsable ``max-age`` counts as stale (RFC 9111 §4.2.1). ``s-maxage`` is
    for shared caches, which monitor is not. ``must-revalidate`` only matters once stale, so a
    max-age beside it is honoured. ``Expires`` is taken relative to the response's ``Date``
    (clocks differ), or to `now` when Date is absent or unparsable; an invalid Expires (``0``,
    ``-1``) means already expired.
    """
    lower = {key.lower(): value for key, value in headers.items()}
    if "cache-control" not in lower and "expires" not in lower:
        return None  # the usual case: nothing said
    directives = _cache_directives(lower.get("cache-control", ""))
    if "no-store" in directives or "no-cache" in directives:
        return None
    if "max-age" in directives:
        max_age = _non_negative_number(directives["max-age"])
        if max_age is None:
            return None
        age = _non_negative_number(lower.get("age")) or 0.0
        return _positive(max_age - age)
    expires = _http_date(lower.get("expires", ""))
    if expires is None:
        return None
    date = _http_date(lower.get("date", "")) or now
    return _positive((expires - date).total_seconds())


def adaptive_interval(
    published: Sequence[datetime | None],
    now: datetime,
    settings: ScheduleSettings,
    *,
    ttl_minutes: int | None = None,
    server_hint: float | None = None,
    previous: float | None = None,
) -> float:
    """The interval to poll a feed at, learnt from its publication dates: about one poll per
    new entry on average, so busy feeds are polled often and quiet ones rarely.

    Observation: take the newest ``RATE_WINDOW`` (20) dates that are not in the future (a
    misdated entry says nothing about the rate). The k-th newest date t_k (k = 1, 2, ...)
    says k entries came out in ``now - t_k``, so ``(now - t_k) / k`` estimates the mean gap
    between entries; the observed interval is the median of these estimates. The median
    ignores one odd date (an old pinned post, a misdated entry), and counting up to `now`
    makes a feed that published a burst then fell silent slow down as the silence lasts.
    With fewer than two distinct dates (no dates, all the same date) there is no
    observation, and the interval stays at `previous`, else the default interval.

    Smoothing: ``interval = previous^(1-a) * observed^a`` with a = ``SMOOTHING`` (0.25), a
    moving average in log space (intervals range over minutes to days), so one odd poll moves
    the interval a little and a steady rate is converged to.

    Floors and bounds: never below the feed's own ``ttl_minutes`` (RSS <ttl>, else
    sy:updatePeriod/sy:updateFrequency) nor the server's `server_hint` (see
    `server_hint_seconds`); always within [min_interval, max_interval].
    """
    observed = _observed_gap(published, now)
    if observed is None:
        learnt = previous if previous is not None else settings.default_interval
    elif previous is None or previous <= 0:
        learnt = observed
    else:
        learnt = math.exp((1 - SMOOTHING) * math.log(previous) + SMOOTHING * math.log(observed))
    floors = [learnt]
    if ttl_minutes:
        floors.append(ttl_minutes * 60.0)
    if server_hint is not None:
        floors.append(server_hint)
    return _clamp(max(floors), settings)


def next_due(now: datetime, delay: float) -> datetime:
    return now + timedelta(seconds=delay)


def _observed_gap(published: Sequence[datetime | None], now: datetime) -> float | None:
    dates = sorted((d for d in published if d is not None and d <= now), reverse=True)
    dates = dates[:RATE_WINDOW]
    if len(set(dates)) < 2:
        return None
    gaps = [(now - date).total_seconds() / k for k, date in enumerate(dates, start=1)]
    observed = statistics.median(gaps)
    return observed if observed > 0 else None


def _clamp(seconds: float, settings: ScheduleSettings) -> float:
    return min(max(seconds, settings.min_interval), settings.max_interval)


def _cache_directives(value: str) -> dict[str, str]:
    directives = {}
    for part in value.split(","):
        name, _, argument = part.strip().partition("=")
        if name:
            directives[name.strip().lower()] = argument.strip().strip('"')
    return directives


def _non_negative_number(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return float(value.strip())


def _positive(seconds: float) -> float | None:
    return seconds if seconds > 0 else None


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)
