"""Scheduling arithmetic: intervals (configured, learnt, default), server hints, backoff,
Retry-After; and learnt intervals on real feeds from tests/fixtures/feeds."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from monitor.feeds.parse import parse_feed
from monitor.schedule import (
    adaptive_interval,
    failure_delay,
    retry_after_seconds,
    server_hint_seconds,
    success_delay,
)
from monitor.settings import ScheduleSettings

S = ScheduleSettings(default_interval=1800, min_interval=300, max_interval=86400, max_backoff=21600)
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
HOUR = 3600.0
FEEDS = Path(__file__).parent / "fixtures" / "feeds"


def _every(seconds: float, count: int, *, latest: float = 0.0) -> list[datetime]:
    """`count` publication dates `seconds` apart, the newest `latest` seconds before NOW."""
    return [NOW - timedelta(seconds=latest + n * seconds) for n in range(count)]


# --- success_delay -----------------------------------------------------------------------------

def test_success_delay_is_bounded() -> None:
    assert success_delay(None, S) == 1800
    assert success_delay(60, S) == 300
    assert success_delay(10**6, S) == 86400


def test_configured_interval_wins_over_the_learnt_one_which_wins_over_the_default() -> None:
    assert success_delay(900, S, adaptive=7200) == 900
    assert success_delay(None, S, adaptive=7200) == 7200
    assert success_delay(None, S, adaptive=10) == 300  # still bounded
    assert success_delay(None, S, adaptive=None) == 1800
    off = S.model_copy(update={"adaptive": False})
    assert success_delay(None, off, adaptive=7200) == 1800  # as before adaptive intervals


# --- failure_delay ----------------------------------------------------------------------------

def test_backoff_grows_then_caps_and_never_stops() -> None:
    rng = random.Random(1)
    delays = [failure_delay(n, None, S, rng=rng) for n in range(1, 12)]
    assert 1800 * 0.9 <= delays[0] <= 1800 * 1.1
    assert 3600 * 0.9 <= delays[1] <= 3600 * 1.1
    assert all(d <= 21600 * 1.1 for d in delays)
    assert delays[-1] >= 21600 * 0.9


def test_backoff_doubles_exactly_without_jitter_and_caps_at_max_backoff() -> None:
    class NoJitter(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return 1.0

    delays = [failure_delay(n, 600, S, rng=NoJitter()) for n in range(1, 9)]
    assert delays == [600, 1200, 2400, 4800, 9600, 19200, 21600, 21600]
    # a configured interval longer than max_backoff is never shortened by a failure
    assert failure_delay(5, 43200, S, rng=NoJitter()) == 43200


def test_jitter_stays_within_ten_percent_and_spreads_feeds() -> None:
    rng = random.Random(7)
    delays = [failure_delay(3, None, S, rng=rng) for _ in range(2000)]
    assert min(delays) >= 7200 * 0.9 and max(delays) <= 7200 * 1.1
    assert max(delays) - min(delays) > 7200 * 0.15  # really spread, not one value
    assert len({round(d) for d in delays}) > 500


def test_retry_after_is_honoured() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Thu, 01 Jan 2026 01:00:00 GMT", now) == 3600
    assert retry_after_seconds("Wed, 31 Dec 2025 23:00:00 GMT", now) == 0  # already past
    assert retry_after_seconds("garbage", now) is None
    assert retry_after_seconds(None, now) is None
    assert failure_delay(1, None, S, retry_after=50000) == 50000


def test_retry_after_wins_only_when_longer_and_is_bounded() -> None:
    rng = random.Random(3)
    short = failure_delay(1, None, S, retry_after=10, rng=rng)
    assert 1800 * 0.9 <= short <= 1800 * 1.1  # the backoff is longer: it wins
    date = retry_after_seconds("Fri, 02 Jan 2026 00:00:00 GMT", NOW)  # 429/503 with a date
    assert date == 12 * HOUR
    assert failure_delay(1, None, S, retry_after=date, rng=rng) == 12 * HOUR
    # "come back in a year" must not silently stop the feed: at most the longest wait we use
    assert failure_delay(1, None, S, retry_after=365 * 86400, rng=rng) == 86400


# --- server_hint_seconds ------------------------------------------------------------------------

@pytest.mark.parametrize(("headers", "expected"), [
    ({"cache-control": "public, max-age=900"}, 900),
    ({"Cache-Control": "max-age=\"600\", must-revalidate"}, 600),
    ({"cache-control": "max-age=900", "age": "300"}, 600),  # 300 s already spent in a cache
    ({"cache-control": "max-age=900", "age": "1200"}, None),  # stale already
    ({"cache-control": "max-age=900", "age": "soon"}, 900),
    ({"cache-control": "max-age=0, must-revalidate"}, None),
    ({"cache-control": "no-cache, max-age=900"}, None),
    ({"cache-control": "no-store"}, None),
    ({"cache-control": "max-age=-5"}, None),
    ({"cache-control": "max-age=soon"}, None),
    ({"cache-control": "s-maxage=900"}, None),  # for shared caches only
    ({"cache-control": "max-age=900", "expires": "Fri, 02 Jan 2026 00:00:00 GMT"}, 900),
    ({"expires": "Thu, 01 Jan 2026 13:00:00 GMT", "date": "Thu, 01 Jan 2026 12:30:00 GMT"}, 1800),
    ({"expires": "Thu, 01 Jan 2026 13:00:00 GMT"}, 3600),  # no Date: from now
    ({"expires": "Thu, 01 Jan 2026 13:00:00 GMT", "date": "yesterday"}, 3600),
    ({"expires": "Thu, 01 Jan 2026 11:00:00 GMT"}, None),  # in the past
    ({"expires": "0"}, None),
    ({"expires": "-1", "cache-control": "private"}, None),
    ({}, None),
])
def test_server_hint(headers: dict, expected: float | None) -> None:
    assert server_hint_seconds(headers, NOW) == expected


# --- adaptive_interval --------------------------------------------------------------------------

def test_an_hourly_wire_is_polled_about_hourly() -> None:
    got = adaptive_interval(_every(HOUR, 30, latest=600), NOW, S)
    assert 0.8 * HOUR <= got <= 1.1 * HOUR


def test_a_daily_blog_is_polled_about_daily() -> None:
    got = adaptive_interval(_every(24 * HOUR, 15, latest=5 * HOUR), NOW, S)
    assert 20 * HOUR <= got <= 26 * HOUR


def test_a_busy_feed_is_held_at_the_minimum_and_a_dead_one_at_the_maximum() -> None:
    assert adaptive_interval(_every(30, 50), NOW, S) == S.min_interval
    assert adaptive_interval(_every(90 * 86400, 5), NOW, S) == S.max_interval


def test_a_burst_then_silence_slows_down_as_the_silence_lasts() -> None:
    burst = [NOW - timedelta(days=3, minutes=n) for n in range(10)]  # 10 in 10 min, 3 days ago
    got = adaptive_interval(burst, NOW, S)
    assert got > 6 * HOUR  # not "every minute" from the burst's own gaps
    later = adaptive_interval(burst, NOW + timedelta(days=4), S)
    assert later > got


def test_one_outlier_does_not_move_it() -> None:
    hourly = _every(HOUR, 20, latest=600)
    pinned = [*hourly[:-1], NOW - timedelta(days=900)]  # an old post pinned to the feed
    assert adaptive_interval(pinned, NOW, S) == pytest.approx(
        adaptive_interval(hourly, NOW, S), rel=0.15)


def test_dates_in_the_future_are_ignored() -> None:
    hourly = _every(HOUR, 20, latest=600)
    future = [NOW + timedelta(days=d) for d in (1, 30, 400)]
    assert adaptive_interval([*future, *hourly], NOW, S) == adaptive_interval(hourly, NOW, S)
    assert adaptive_interval(future, NOW, S, previous=7200) == 7200


def test_no_dates_or_all_the_same_date_keep_the_previous_or_the_default() -> None:
    for published in ([], [None] * 10, [NOW - timedelta(hours=2)] * 10):
        assert adaptive_interval(published, NOW, S) == S.default_interval
        assert adaptive_interval(published, NOW, S, previous=5000) == 5000


def test_ttl_and_server_hint_are_floors() -> None:
    hourly = _every(HOUR, 20, latest=600)
    assert adaptive_interval(hourly, NOW, S, ttl_minutes=180) == 3 * HOUR
    assert adaptive_interval(hourly, NOW, S, server_hint=4 * HOUR) == 4 * HOUR
    assert adaptive_interval(hourly, NOW, S, ttl_minutes=5, server_hint=60) < HOUR  # no effect
    hint = server_hint_seconds({"cache-control": "max-age=7200"}, NOW)
    assert adaptive_interval(hourly, NOW, S, server_hint=hint) == 7200
    assert adaptive_interval([], NOW, S, ttl_minutes=24 * 60) == 24 * HOUR  # no dates, a ttl
    assert adaptive_interval(hourly, NOW, S, ttl_minutes=10**6) == S.max_interval  # clamped


def test_smoothing_damps_one_odd_poll_and_converges() -> None:
    hourly = _every(HOUR, 20, latest=600)
    target = adaptive_interval(hourly, NOW, S)
    # a daily feed that suddenly looks hourly moves only part of the way
    once = adaptive_interval(hourly, NOW, S, previous=24 * HOUR)
    assert 4 * HOUR < once < 24 * HOUR
    interval, steps = 24 * HOUR, 0
    while abs(interval / target - 1) > 0.02:
        interval = adaptive_interval(hourly, NOW, S, previous=interval)
        steps += 1
    assert steps <= 20
    # and the other way round: from the minimum up to a daily rate
    daily = _every(24 * HOUR, 15, latest=5 * HOUR)
    interval = S.min_interval
    for _ in range(20):
        interval = adaptive_interval(daily, NOW, S, previous=interval)
    assert interval == pytest.approx(adaptive_interval(daily, NOW, S), rel=0.05)


# Real feeds, "now" just after each was captured (its newest entry + 10 min): learnt interval
# in hours must fall within (low, high).
REAL_FEEDS = {
    "feed-rs/atom_mediarss_reddit_1.xml": (0.08, 0.5),  # a busy subreddit: near the minimum
    "feedjira/google_alerts_atom.xml": (0.3, 1.5),
    "rsparser/aktuality.rss": (1.0, 1.0),  # a news site: its <ttl>60</ttl> is the floor
    "rsparser/livemint.xml": (0.7, 2.0),  # a news site
    "rsparser/scriptingNews.rss": (1.5, 4.0),
    "rsparser/DaringFireball.atom": (3.0, 8.0),  # a blog with several posts a day
    "rsparser/cloudblog.rss": (6.0, 18.0),
    "rsparser/KatieFloyd.rss": (24.0, 24.0),  # months between posts: the maximum
}


def test_learnt_intervals_of_real_feeds_are_sensible() -> None:
    for name, (low, high) in REAL_FEEDS.items():
        parsed = parse_feed((FEEDS / name).read_bytes(), url="https://example.org/feed")
        dates = [entry.published for entry in parsed.entries]
        now = max(d for d in dates if d is not None) + timedelta(minutes=10)
        hours = adaptive_interval(dates, now, S, ttl_minutes=parsed.ttl_minutes) / HOUR
        print(f"{name}: {len(dates)} entries, ttl={parsed.ttl_minutes}, every {hours:.2f} h")
        assert low <= hours <= high, (name, hours)
