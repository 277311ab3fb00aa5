"""The alerts' outbox: entries queued with their items, claimed by one sender, marked once sent.
Does I/O.

In: item ids and alert names (`queue`, inside the transaction that stores or reclassifies the
item, so an item is never stored without its entries nor the reverse); a sender's identity and
the time. Out: `OutboxEntry`s leased to one sender (`claim_entries`: one statement, the rows
picked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers never take the same entry;
on SQLite ``BEGIN IMMEDIATE`` excludes other writers), then their outcome: an address that
accepted them (`record_delivery`), sent (`mark_sent`), or failed and due again later
(`mark_failed`). An entry whose sender died while sending (state ``sending``, lease expired) is
claimed again and counted in ``resends``: the service may have accepted it before the crash,
the one duplicate allowed. `alert_figures` counts the entries of each alert for `alerts list`,
the inspector and /metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, Engine, and_, case, func, or_, select, update

from monitor.store.engine import storage_errors
from monitor.store.schema import alert_outbox, feeds, items

PENDING, SENDING, SENT = "pending", "sending", "sent"


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    attempts: int  # this one included
    delivered: tuple[str, ...]  # keys of the addresses that accepted it already
    item: dict  # id, title, url, feed, published, lang, score, topics, matches


def queue(conn: Connection, item_id: int, alerts: Sequence[str], now: datetime) -> None:
    """Queue `item_id` for each of `alerts` it has no entry for yet; part of the caller's
    transaction."""
    if not alerts:
        return
    have = set(conn.execute(select(alert_outbox.c.alert).where(
        alert_outbox.c.item_id == item_id, alert_outbox.c.alert.in_(alerts))).scalars())
    rows = [{"alert": alert, "item_id": item_id, "state": PENDING, "attempts": 0,
             "created_at": now, "next_attempt": now, "delivered": [], "resends": 0}
            for alert in dict.fromkeys(alerts) if alert not in have]
    if rows:
        conn.execute(alert_outbox.insert(), rows)


@storage_errors
def claim_entries(engine: Engine, *, alert: str, owner: str, now: datetime,
                  lease_until: datetime, queued_before: datetime, limit: int
                  ) -> list[OutboxEntry]:
    """Lease up to `limit` of `alert`'s due entries to `owner`, oldest first: pending ones
    queued at or before `queued_before` whose next attempt has come, and ones a dead sender
    left while sending (counted as resent)."""
    due = or_(and_(alert_outbox.c.state == PENDING, alert_outbox.c.next_attempt <= now,
                   alert_outbox.c.created_at <= queued_before),
              and_(alert_outbox.c.state == SENDING, alert_outbox.c.lease_until < now))
    chosen = (select(alert_outbox.c.id).where(alert_outbox.c.alert == alert, due)
              .order_by(alert_outbox.c.id).limit(limit)
              .with_for_update(skip_locked=True))  # no FOR UPDATE on SQLite
    with engine.begin() as conn:
        claimed = conn.execute(
            update(alert_outbox).where(alert_outbox.c.id.in_(chosen.scalar_subquery()))
            .values(state=SENDING, attempts=alert_outbox.c.attempts + 1,
                    resends=alert_outbox.c.resends
                    + case((alert_outbox.c.state == SENDING, 1), else_=0),
                    lease_owner=owner, lease_until=lease_until)
            .returning(alert_outbox.c.id, alert_outbox.c.item_id, alert_outbox.c.attempts,
                       alert_outbox.c.delivered)).all()
        found = {row.id: row._asdict() for row in conn.execute(
            select(items.c.id, items.c.title, items.c.url, feeds.c.name.label("feed"),
                   items.c.published, items.c.lang, items.c.score, items.c.topics,
                   items.c.matches)
            .select_from(items.outerjoin(feeds, feeds.c.id == items.c.feed_id))
            .where(items.c.id.in_([row.item_id for row in claimed])))}
    return [OutboxEntry(row.id, row.attempts, tuple(row.delivered or ()), found[row.item_id])
            for row in sorted(claimed, key=lambda row: row.id)]


def _mine(owner: str, ids: Iterable[int]):
    return and_(alert_outbox.c.id.in_(list(ids)), alert_outbox.c.lease_owner == owner,
                alert_outbox.c.state == SENDING)


@storage_errors
def record_delivery(engine: Engine, owner: str, ids: Sequence[int], key: str) -> None:
    """The address `key` accepted these entries (still leased to `owner`)."""
    with engine.begin() as conn:
        rows = conn.execute(select(alert_outbox.c.id, alert_outbox.c.delivered)
                            .where(_mine(owner, ids))).all()
        for row in rows:
            conn.execute(update(alert_outbox).where(alert_outbox.c.id == row.id)
                         .values(delivered=[*(row.delivered or []), key]))


@storage_errors
def mark_sent(engine: Engine, owner: str, ids: Sequence[int], now: datetime) -> None:
    """These entries are announced: every address of their alert accepted them."""
    if ids:
        with engine.begin() as conn:
            conn.execute(update(alert_outbox).where(_mine(owner, ids)).values(
                state=SENT, sent_at=now, last_error=None, lease_owner=None, lease_until=None))


@storage_errors
def mark_failed(engine: Engine, owner: str, ids: Sequence[int], error: str,
                next_attempt: datetime) -> None:
    """These entries were refused (`error`, free of secrets): pending again, due at
    `next_attempt`."""
    if ids:
        with engine.begin() as conn:
            conn.execute(update(alert_outbox).where(_mine(owner, ids)).values(
                state=PENDING, last_error=error, next_attempt=next_attempt, lease_owner=None,
                lease_until=None))


@storage_errors
def release_dead_sends(engine: Engine, is_dead: Callable[[str], bool], now: datetime
                       ) -> list[str]:
    """Entries a sender that `is_dead` says is gone left while sending: their lease ends now, so
    they are claimed again (and counted as resent) without waiting for it."""
    with engine.begin() as conn:
        owners = conn.execute(select(alert_outbox.c.lease_owner).distinct()
                              .where(alert_outbox.c.state == SENDING)).scalars().all()
        dead = [owner for owner in owners if owner and is_dead(owner)]
        if dead:
            conn.execute(update(alert_outbox).where(alert_outbox.c.state == SENDING,
                                                    alert_outbox.c.lease_owner.in_(dead))
                         .values(lease_until=now))
    return dead


@storage_errors
def alert_figures(engine: Engine, failing_after: Mapping[str, int]) -> dict[str, dict]:
    """Per alert with entries: pending (sending included), sent and failed (pending again
    after at least its `failing_after` attempts) entries, resends, and the last error of an
    entry not sent."""
    figures: dict[str, dict] = {}
    with engine.connect() as conn:
        for row in conn.execute(
                select(alert_outbox.c.alert, alert_outbox.c.state, alert_outbox.c.attempts,
                       func.count().label("n"), func.sum(alert_outbox.c.resends).label("r"))
                .group_by(alert_outbox.c.alert, alert_outbox.c.state,
                          alert_outbox.c.attempts)):
            entry = figures.setdefault(row.alert, {"pending": 0, "sent": 0, "failed": 0,
                                                   "resends": 0, "last_error": None})
            entry["sent" if row.state == SENT else "pending"] += row.n
            entry["resends"] += int(row.r or 0)
            if row.state == PENDING and row.attempts >= failing_after.get(row.alert, 1):
                entry["failed"] += row.n
        for alert, error in conn.execute(
                select(alert_outbox.c.alert, alert_outbox.c.last_error)
                .where(alert_outbox.c.id.in_(
                    select(func.max(alert_outbox.c.id))
                    .where(alert_outbox.c.state != SENT, alert_outbox.c.last_error.isnot(None))
                    .group_by(alert_outbox.c.alert)))):
            figures[alert]["last_error"] = error
    return figures
