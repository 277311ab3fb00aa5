"""Scheduling arithmetic: intervals, backoff, Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from monitor.schedule import failure_delay, retry_after_seconds, success_delay
from monitor.settings import ScheduleSettings

S = ScheduleSettings(default_interval=1800, min_interval=300, max_interval=86400, max_backoff=21600)


def test_success_delay_is_bounded() -> None:
    assert success_delay(None, S) == 1800
    assert success_delay(60, S) == 300
    assert success_delay(10**6, S) == 86400


def test_backoff_grows_then_caps_and_never_stops() -> None:
    rng = random.Random(1)
    delays = [failure_delay(n, None, S, rng=rng) for n in range(1, 12)]
    assert 1800 * 0.9 <= delays[0] <= 1800 * 1.1
    assert 3600 * 0.9 <= delays[1] <= 3600 * 1.1
    assert all(d <= 21600 * 1.1 for d in delays)
    assert delays[-1] >= 21600 * 0.9


def test_retry_after_is_honoured() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after_seconds("120", now) == 120
    assert retry_after_seconds("Thu, 01 Jan 2026 01:00:00 GMT", now) == 3600
    assert retry_after_seconds("garbage", now) is None
    assert failure_delay(1, None, S, retry_after=50000) == 50000
