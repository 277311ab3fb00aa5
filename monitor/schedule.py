"""Scheduling arithmetic: when is a feed next due? Pure.

In: the outcome of a poll, the feed's interval and error streak, the schedule settings and
``now``. Out: the next due time. Successes come back after the feed's interval (bounded by
the configured minimum and maximum, and never sooner than a server's Retry-After); failures back
off exponentially with jitter, capped, and keep trying: a feed is never given up on silently.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from monitor.settings import ScheduleSettings


def success_delay(interval: float | None, settings: ScheduleSettings) -> float:
    wanted = interval if interval is not None else settings.default_interval
    return min(max(wanted, settings.min_interval), settings.max_interval)


def failure_delay(
    error_streak: int,
    interval: float | None,
    settings: ScheduleSettings,
    *,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Delay after the `error_streak`-th consecutive failure (1 for the first)."""
    base = success_delay(interval, settings)
    backoff = min(base * 2 ** max(error_streak - 1, 0), max(settings.max_backoff, base))
    jitter = (rng or random).uniform(0.9, 1.1)
    delay = backoff * jitter
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def next_due(now: datetime, delay: float) -> datetime:
    return now + timedelta(seconds=delay)
