"""Send the alerts' due outbox entries: claim them, write the message, hand it to each address,
mark them. Does I/O (the database, the network through `notify`).

In: an engine, the configured alerts, the sender's identity (its leases' owner) and lease time,
the inspector's address for the links. Out: a `SendReport`; the entries marked sent once every
address of their alert accepted them (an address that accepted them is recorded at once, so a
retry goes only to the others), or pending again with the next attempt backed off
(`alerts.timing.retry_wait`) and the error, masked, stored and logged. An alert's entries are
claimed `max_items` at a time (one message each, for each address) until none is due or one
fails. Runs in the daemon's sender thread (`AlertSender`), or once for `monitor alerts send`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from monitor.alerts import message, timing
from monitor.alerts.masking import masked, scrub
from monitor.alertsettings import AlertSettings
from monitor.settings import Settings
from monitor.store.engine import Engine
from monitor.store.outbox import (
    OutboxEntry,
    claim_entries,
    mark_failed,
    mark_sent,
    record_delivery,
)

log = logging.getLogger("monitor.alerts")


@dataclass
class SendReport:
    sent: int = 0  # entries announced
    failed: int = 0  # entries not sent this time (tried again later)
    messages: int = 0  # messages handed to services
    errors: list[str] = field(default_factory=list)  # "alert: error", masked


def send_due(engine: Engine, alerts: Sequence[AlertSettings], *, owner: str, lease: float,
             base_url: str | None, stop: Callable[[], bool] = lambda: False) -> SendReport:
    """Send every due entry of `alerts` (until `stop()` says to stop, between two messages)."""
    report = SendReport()
    for alert in alerts:
        while not stop():
            now = datetime.now(UTC)
            entries = claim_entries(engine, alert=alert.name, owner=owner, now=now,
                                    lease_until=now + timedelta(seconds=lease),
                                    queued_before=timing.cutoff(alert, now),
                                    limit=alert.max_items)
            if not entries or not _send(engine, alert, entries, owner, base_url, report):
                break
    return report


def _send(engine: Engine, alert: AlertSettings, entries: list[OutboxEntry], owner: str,
          base_url: str | None, report: SendReport) -> bool:
    """One message of `entries` to each address that has not accepted them yet; True when all
    did."""
    from monitor.worker import notify  # Apprise loads its ~170 services: only when sending

    now = datetime.now(UTC)
    problems = []
    for target in alert.targets:
        waiting = [entry for entry in entries if target.key not in entry.delivered]
        if not waiting:
            continue
        error = notify.deliver(target.url, _message(alert, waiting, base_url, now))
        report.messages += 1
        if error is None:
            record_delivery(engine, owner, [entry.id for entry in waiting], target.key)
        else:
            problems.append(f"{masked(target.written)}: "
                            f"{scrub(error, [t.url for t in alert.targets])}")
    ids = [entry.id for entry in entries]
    if not problems:
        mark_sent(engine, owner, ids, now)
        report.sent += len(ids)
        log.info("alert %s: %d item%s announced", alert.name, len(ids),
                 "s" if len(ids) != 1 else "")
        return True
    attempts = max(entry.attempts for entry in entries)
    wait = timing.retry_wait(alert, attempts)
    error = "; ".join(problems)
    mark_failed(engine, owner, ids, error, datetime.now(UTC) + timedelta(seconds=wait))
    report.failed += len(ids)
    report.errors.append(f"{alert.name}: {error}")
    log.warning("alert %s: %d entries not sent (attempt %d, next in %.0f s): %s", alert.name,
                len(ids), attempts, wait, error)
    return False


def _message(alert: AlertSettings, entries: list[OutboxEntry], base_url: str | None,
             now: datetime) -> message.Message:
    items = [entry.item for entry in entries]
    if alert.mode == "immediate":
        return message.immediate(alert.name, items, base_url)
    best_first = sorted(items, key=lambda item: (-item["score"], item["id"]))
    return message.digest(alert.name, best_first, base_url,
                          timing.cutoff(alert, now).astimezone(alert.digest_time()[2]))


class AlertSender:
    """The daemon's sender: `send_due` at each of its runs (APScheduler's job), in a thread of
    its own, so a slow or failing service never holds up the polls nor their database calls."""

    def __init__(self, engine: Engine, settings: Settings, owner: str,
                 stop: asyncio.Event) -> None:
        self._engine, self._settings, self._owner, self._stop = engine, settings, owner, stop
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="alert-sender")
        self._running: asyncio.Future | None = None

    async def run(self) -> None:
        if not self._stop.is_set():
            self._running = asyncio.get_running_loop().run_in_executor(self._thread, self._send)
            await self._running

    def _send(self) -> None:
        try:
            send_due(self._engine, self._settings.alerts, owner=self._owner,
                     lease=self._settings.schedule.lease, base_url=self._settings.web.base_url,
                     stop=self._stop.is_set)
        except Exception:  # the database may be back at the next run; the entries wait
            log.exception("sending alerts failed; tried again at the next run")

    async def close(self, grace: float) -> None:
        """Let a message being sent finish (within `grace` seconds), then stop the thread. One
        still being sent after that is sent again once its lease ends (counted as resent)."""
        if self._running is not None and not self._running.done():
            await asyncio.wait([self._running], timeout=grace)
        self._thread.shutdown(wait=False)
