"""Each configured alert as `alerts list`, the inspector and /metrics show it. Pure.

In: the configured alerts and the outbox's figures per alert (`store.outbox.alert_figures`).
Out: one dict per alert: name, mode, digest time, addresses (masked), filters, pending, sent and
failed entries, resends (sent again after a crash left the outcome unknown), whether it is
failing (an entry failed at least ``failing_after`` times), and the last error (masked when it
was stored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from monitor.alerts.masking import masked
from monitor.alertsettings import AlertSettings


def alert_status(alerts: Iterable[AlertSettings], figures: Mapping[str, dict]) -> list[dict]:
    rows = []
    for alert in alerts:
        counts = figures.get(alert.name, {})
        rows.append({
            "name": alert.name, "mode": alert.mode,
            "at": alert.at if alert.mode == "digest" else None,
            "to": [masked(target.written) for target in alert.targets],
            "filters": {"topics": list(alert.topics), "lang": list(alert.lang),
                        "feeds": list(alert.feeds), "min_score": alert.min_score},
            "pending": counts.get("pending", 0), "sent": counts.get("sent", 0),
            "failed": counts.get("failed", 0), "resends": counts.get("resends", 0),
            "failing": counts.get("failed", 0) > 0,
            "last_error": counts.get("last_error"),
        })
    return rows


def failing_after(alerts: Iterable[AlertSettings]) -> dict[str, int]:
    """Each alert's ``failing_after``, for `store.outbox.alert_figures`."""
    return {alert.name: alert.failing_after for alert in alerts}
