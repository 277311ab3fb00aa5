"""/metrics in the Prometheus text exposition format (version 0.0.4). Pure.

In: the figures of `store.totals.metric_figures` and the time. Out: the text. Everything is read
from the database, so the figures are the same whichever process (daemon, workers, this server)
did the work; counters only grow because poll and item rows are never deleted.

Metrics: monitor_polls_total{status}, monitor_poll_errors_total{reason},
monitor_page_errors_total, monitor_items_total, monitor_relevant_items_total,
monitor_feeds{state}, monitor_feeds_due (the queue of due feeds not leased),
monitor_last_successful_poll_timestamp_seconds and the histogram
monitor_poll_duration_seconds (a poll: the feed and its new pages, from the polls table); for
each configured alert (`alerts.status.alert_status` rows), monitor_alert_entries{alert,state}
(pending, sent, failed), monitor_alert_failing{alert} (1 when an entry failed
``failing_after`` times) and monitor_alert_resends_total{alert} (entries sent again after a
crash left their outcome unknown).
"""

from __future__ import annotations

from datetime import datetime

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _label(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def render_metrics(figures: dict, *, now: datetime) -> str:
    lines: list[str] = []

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, dict, float]]):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for suffix, labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{suffix}{{{text}}} {_number(value)}" if text
                         else f"{name}{suffix} {_number(value)}")

    family("monitor_polls_total", "counter", "Polls of feeds, by outcome.",
           [("", {"status": s}, n) for s, n in sorted(figures["polls_by_status"].items())])
    family("monitor_poll_errors_total", "counter", "Failed polls, by error reason.",
           [("", {"reason": r}, n) for r, n in sorted(figures["errors_by_reason"].items())])
    family("monitor_page_errors_total", "counter",
           "Article pages that could not be fetched or yielded no text.",
           [("", {}, figures["page_errors"])])
    family("monitor_items_total", "counter", "Items stored.", [("", {}, figures["items"])])
    family("monitor_relevant_items_total", "counter", "Items stored and judged relevant.",
           [("", {}, figures["relevant_items"])])
    family("monitor_feeds", "gauge",
           "Feeds known, active (enabled, configured, not stopped), failing.",
           [("", {"state": "known"}, figures["feeds"]),
            ("", {"state": "active"}, figures["active_feeds"]),
            ("", {"state": "failing"}, figures["failing_feeds"])])
    family("monitor_feeds_due", "gauge", "Active feeds due for a poll and not leased: the queue.",
           [("", {}, figures["due_feeds"])])
    last = figures["last_success"]
    family("monitor_last_successful_poll_timestamp_seconds", "gauge",
           "When a poll last succeeded (Unix time; 0 if never).",
           [("", {}, round(last.timestamp(), 3) if last else 0.0)])
    samples = [("_bucket", {"le": _number(bound)}, count)
               for bound, count in zip(DURATION_BUCKETS, figures["duration_buckets"],
                                       strict=True)]
    samples += [("_bucket", {"le": "+Inf"}, figures["duration_count"]),
                ("_sum", {}, round(figures["duration_sum"], 6)),
                ("_count", {}, figures["duration_count"])]
    family("monitor_poll_duration_seconds", "histogram",
           "Time of one poll: fetching the feed and its new article pages.", samples)
    alerts = figures.get("alerts", [])
    family("monitor_alert_entries", "gauge", "Alert outbox entries, by state.",
           [("", {"alert": a["name"], "state": state}, a[state])
            for a in alerts for state in ("pending", "sent", "failed")])
    family("monitor_alert_failing", "gauge",
           "1 when an entry of the alert failed failing_after times, else 0.",
           [("", {"alert": a["name"]}, int(a["failing"])) for a in alerts])
    family("monitor_alert_resends_total", "counter",
           "Alert entries sent again after a crash left their outcome unknown.",
           [("", {"alert": a["name"]}, a["resends"]) for a in alerts])
    family("monitor_scrape_timestamp_seconds", "gauge", "When these figures were read.",
           [("", {}, round(now.timestamp(), 3))])
    return "\n".join(lines) + "\n"
