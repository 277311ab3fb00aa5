"""When an alert's outbox entries are due, and how long a failed one waits. Pure arithmetic.

In: an `AlertSettings` and the time. Out: the `cutoff` (an entry queued at or before it is due:
now for an immediate alert; a digest's last ``at`` time of day, in its zone, for a digest), and
the wait before the next attempt after `attempts` failures (``retry`` doubled each time, at most
`MAX_RETRY_WAIT`, or ``retry`` itself if that is longer).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.alertsettings import AlertSettings

MAX_RETRY_WAIT = 3600.0


def cutoff(alert: AlertSettings, now: datetime) -> datetime:
    """Entries queued at or before this are due now."""
    if alert.mode == "immediate":
        return now
    hour, minute, zone = alert.digest_time()
    local = now.astimezone(zone)
    last = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if last > local:
        last = (local - timedelta(days=1)).replace(hour=hour, minute=minute, second=0,
                                                   microsecond=0)
    # a local time a DST change skips or repeats: its zone offset as the zone gives it
    return last.replace(tzinfo=zone).astimezone(UTC)


def retry_wait(alert: AlertSettings, attempts: int) -> float:
    """Seconds to wait after the `attempts`-th failed attempt (1 for the first)."""
    ceiling = max(alert.retry, MAX_RETRY_WAIT)
    return min(alert.retry * 2 ** min(max(attempts - 1, 0), 30), ceiling)
