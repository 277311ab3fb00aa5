"""One feed, end to end: fetch -> parse -> new? -> page -> extract -> classify -> store.

In: a leased `FeedRow` and the `PollContext` (settings, database, fetcher, host gate, robots.txt
cache, CPU pool, corpus, current rules). Out: the `PollRecord` of the poll, handed to the
`PollRecorder`, which writes it with others in one transaction.

Runs on the worker's event loop: requests are awaited, CPU work (parsing, extraction) goes to
the process pool and database calls to threads, so one poll never holds up another. A poll takes
at most ``http.max_entries`` new entries, the newest (`feeds.intake`), and stores their items in
batches as they are ready, before the poll (with the feed's new validators, once no entry is
left) is recorded: an entry counts as seen only once its item is stored, and an interrupted
poll is simply done again. A story already stored, from this feed or
another, by GUID, canonical URL (the entry's or the page's) or text, is not stored again: the
feed is recorded as one more source of it. No error of one feed or page escapes: it is recorded
with its reason and the poll goes on; a refused write or read (`StorageError`, reason
``storage-error``: the database or the corpus folder) fails the poll it happens in, and so does
running past ``schedule.poll_deadline`` (`watchdog.py`, reason ``poll-deadline``, naming the
stage the poll was stuck in).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable
from datetime import datetime
from typing import TypeVar

from monitor.errors import HTTPStatus, MonitorError
from monitor.feeds.intake import has_content, take_newest
from monitor.identity import canonical_url
from monitor.schedule import (
    adaptive_interval,
    failure_delay,
    next_due,
    retry_after_seconds,
    server_hint_seconds,
    success_delay,
)
from monitor.store.feeds import FeedRow
from monitor.store.items import stored_entries
from monitor.store.polls import PollRecord
from monitor.worker.context import PollContext, PollTally, now_utc
from monitor.worker.stories import Story, handle_stories, skip_stored
from monitor.worker.watchdog import within_deadline

log = logging.getLogger("monitor.poll")
T = TypeVar("T")


async def poll_feed(ctx: PollContext, feed: FeedRow) -> PollRecord:
    """Poll one feed and store what it brings; never raises for a feed's or a page's fault."""
    started, clock = now_utc(), time.monotonic()
    tally = PollTally()
    try:
        record = await within_deadline(_poll(ctx, feed, started, tally),
                                       ctx.settings.poll_deadline, tally.stages, feed.url)
    except MonitorError as exc:
        record = _failure(ctx, feed, started, tally, exc)
    except Exception as exc:  # a bug must not stop the other feeds: record it, loudly
        log.exception("internal error while polling %s", feed.url)
        record = _failure(ctx, feed, started, tally, MonitorError(
            f"internal error: {exc.__class__.__name__}: {exc}; please report it",
            reason="internal"))
    streak = feed.error_streak + 1 if record.status == "error" else 0
    _log_line(ctx, feed, record, time.monotonic() - clock, streak, tally)
    ctx.recorder.add(record, streak)
    if ctx.on_poll is not None:
        ctx.on_poll(record, tally)
    return record


async def _poll(ctx: PollContext, feed: FeedRow, started: datetime, tally: PollTally) -> PollRecord:
    settings = ctx.settings
    fetched = await tally.stages.run("fetch feed", ctx.fetch(
        feed.fetch_url, etag=feed.etag, last_modified=feed.last_modified,
        max_bytes=settings.http.max_feed_bytes))
    now = now_utc()
    moved_to = fetched.url if fetched.redirected_permanently and fetched.url != feed.fetch_url \
        else None
    hint = server_hint_seconds(fetched.headers, now)
    base = {"feed_id": feed.id, "started_at": started, "http_status": fetched.status,
            "bytes": len(fetched.content), "moved_to": moved_to, "worker": ctx.worker}
    if fetched.not_modified:
        # Nothing new to learn the rate from; the server's freshness hint still counts.
        kept = feed.adaptive_interval if hint is None else adaptive_interval(
            (), now, settings.schedule, server_hint=hint, previous=feed.adaptive_interval)
        # `now` is its end too: nothing is left to do (one clock reading less per 304).
        return PollRecord(finished_at=now, status="not-modified",
                          next_due=_due(ctx, feed, kept, now), adaptive_interval=kept, **base)
    body_hash = hashlib.sha256(fetched.content).hexdigest()
    if body_hash == feed.body_hash:
        # Same bytes as the last complete poll (validators missing or ignored by the server).
        finished = now_utc()  # after the hashing, which a large body makes long
        return PollRecord(finished_at=finished, status="unchanged",
                          next_due=_due(ctx, feed, feed.adaptive_interval, finished),
                          etag=fetched.etag, last_modified=fetched.last_modified,
                          body_hash=body_hash, **base)
    ctx.cpu.start_soon()  # news, perhaps: extraction processes start while pages are fetched
    parsed = await tally.stages.run("parse", _unless_stopped(
        ctx, ctx.cpu.parse_feed(fetched.content, fetched.url, fetched.headers)))
    if parsed is None:  # asked to stop while the feed was parsed (seconds for a large one)
        return PollRecord(finished_at=now_utc(), status="interrupted", next_due=now_utc(), **base)
    tally.entries = len(parsed.entries)
    learnt = adaptive_interval([e.published for e in parsed.entries], now, settings.schedule,
                               ttl_minutes=parsed.ttl_minutes, server_hint=hint,
                               previous=feed.adaptive_interval)
    guids = [entry.guid for entry in parsed.entries if has_content(entry)]  # not bare <guid>s
    canonical_of = {entry.link: canonical_url(entry.link)
                    for entry in parsed.entries if entry.link}
    # Which entries are stored (by GUID) and which stories (by canonical URL), in one trip to
    # a database thread: the URLs of the entries found by GUID are looked up for nothing.
    known, stored = await tally.stages.run("look-ups", ctx.read(
        stored_entries, feed.id, guids, list(dict.fromkeys(canonical_of.values())))) \
        if guids else (set(), {})
    new, seen = [], set(known)
    for entry in parsed.entries:
        if entry.guid not in seen:  # a feed may list one entry twice
            seen.add(entry.guid)
            new.append(entry)
    intake = take_newest(new, settings.http.max_entries)
    tally.left, tally.empty = intake.left, intake.empty
    fresh = [Story(entry, canonical_of.get(entry.link)) for entry in intake.taken]
    fresh = await skip_stored(ctx, feed, fresh, stored, tally)
    interrupted = await handle_stories(ctx, feed, fresh, tally)
    if interrupted:
        # Leave the validators as they were: the next poll sees the remaining entries again.
        return PollRecord(finished_at=now_utc(), status="interrupted", next_due=now_utc(),
                          entries=tally.entries, new_items=tally.new_items,
                          relevant_items=tally.relevant_items,
                          page_errors=tally.page_errors, **base)
    # Entries left for the next polls (over http.max_entries): no validators, so that neither a
    # 304 nor the same body hash hides them, and the next poll as soon as any feed may be polled.
    validators = {} if tally.left else {
        "etag": fetched.etag, "last_modified": fetched.last_modified, "body_hash": body_hash}
    finished = now_utc()
    due = (next_due(finished, settings.schedule.min_interval) if tally.left
           else _due(ctx, feed, learnt, finished))
    return PollRecord(finished_at=finished, status="ok", next_due=due,
                      entries=tally.entries, new_items=tally.new_items,
                      relevant_items=tally.relevant_items, page_errors=tally.page_errors,
                      adaptive_interval=learnt, **validators, **base)


async def _unless_stopped(ctx: PollContext, work: Awaitable[T]) -> T | None:
    """What `work` gives, or None (the work cancelled) if the worker is asked to stop first."""
    task, stop = asyncio.ensure_future(work), asyncio.ensure_future(ctx.stop.wait())
    try:
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop.cancel()
        if not task.done():
            task.cancel()
    return task.result() if task in done else None


def _due(ctx: PollContext, feed: FeedRow, learnt: float | None, finished: datetime) -> datetime:
    delay = success_delay(feed.interval, ctx.settings.schedule,
                          adaptive=learnt if ctx.settings.schedule.adaptive else None)
    return next_due(finished, delay)


def _failure(ctx: PollContext, feed: FeedRow, started: datetime, tally: PollTally,
             exc: MonitorError) -> PollRecord:
    now = now_utc()
    status = getattr(exc, "status", None)
    retry_after = getattr(exc, "retry_after", None)
    delay = failure_delay(feed.error_streak + 1, feed.interval, ctx.settings.schedule,
                          retry_after=retry_after_seconds(retry_after, now))
    disabled = None
    if isinstance(exc, HTTPStatus) and status == 410:
        disabled = (f"gone: {feed.fetch_url} answered 410 Gone on {now:%Y-%m-%d %H:%M} UTC; "
                    "remove the feed from feeds.yaml or give it its new URL")
    return PollRecord(feed_id=feed.id, started_at=started, finished_at=now, status="error",
                      next_due=next_due(now, delay), http_status=status,
                      entries=tally.entries, new_items=tally.new_items,
                      relevant_items=tally.relevant_items, page_errors=tally.page_errors,
                      error_reason=exc.reason, error_message=exc.message,
                      disabled_reason=disabled, worker=ctx.worker)


def _log_line(ctx: PollContext, feed: FeedRow, record: PollRecord, seconds: float, streak: int,
              tally: PollTally) -> None:
    if record.moved_to:
        log.warning("feed %r moved permanently: %s -> %s; monitor now fetches the new URL "
                    "(update feeds.yaml to match)", feed.name, feed.fetch_url, record.moved_to)
    if record.disabled_reason:
        log.warning("feed %r disabled: %s", feed.name, record.disabled_reason)
    failed = record.status == "error"
    if not failed and not log.isEnabledFor(logging.INFO):
        return  # the line of a good poll is not shown: not worth building, 2,000 times a cycle
    line = (f"poll feed={feed.name!r} status={record.error_reason or record.status} "
            f"http={record.http_status or '-'} entries={record.entries} new={record.new_items} "
            f"relevant={record.relevant_items} page_errors={record.page_errors} "
            f"time={seconds:.2f}s")
    if tally.sources_added:
        line += f" also_seen={tally.sources_added}"
    if tally.empty:
        line += f" skipped_empty={tally.empty}"
    if tally.left:
        line += f" left={tally.left} (over http.max_entries: the next polls take them)"
    if failed:
        log.warning("%s error_streak=%d next=%s: %s", line, streak,
                    record.next_due.strftime("%H:%M:%S"), record.error_message)
        if streak == ctx.settings.schedule.unhealthy_after:
            log.warning("feed %r is unhealthy: %d failures in a row (last: %s)",
                        feed.name, streak, record.error_reason)
    else:
        log.info(line)
