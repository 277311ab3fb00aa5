"""One feed, end to end: fetch -> parse -> new? -> page -> extract -> classify -> store.

In: a leased `FeedRow` and the `PollContext` (settings, database, fetcher, corpus, current
rules). Out: the `PollRecord` stored for the poll. Each new item is stored in its own
transaction, so an entry counts as seen only once its item is stored; the feed's validators are
saved only when every entry was handled, so an interrupted poll is simply done again. No error
of one feed or page escapes: it is recorded with its reason and the poll goes on.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy import Engine

from monitor.corpus import Corpus
from monitor.errors import MonitorError
from monitor.extract import extract_article
from monitor.feeds import Entry, parse_feed
from monitor.fetch import Fetcher
from monitor.hostgate import HostGate
from monitor.identity import canonical_url, content_hash
from monitor.rules import RuleSet
from monitor.schedule import failure_delay, next_due, retry_after_seconds, success_delay
from monitor.settings import Settings
from monitor.store.feeds import FeedRow, PollRecord, record_poll
from monitor.store.items import NewItem, insert_item, is_known

log = logging.getLogger("monitor.poll")


@dataclass
class PollContext:
    settings: Settings
    engine: Engine
    fetcher: Fetcher
    gate: HostGate
    corpus: Corpus
    rules: Callable[[], RuleSet]  # the current rules (they may be reloaded between polls)
    stop: threading.Event
    worker: str | None = None  # this worker's identity (host:pid:nonce), the owner of its leases


@dataclass
class _Tally:
    entries: int = 0
    new_items: int = 0
    relevant_items: int = 0
    page_errors: int = 0


def now_utc() -> datetime:
    return datetime.now(UTC)


def poll_feed(ctx: PollContext, feed: FeedRow) -> PollRecord:
    """Poll one feed and store what it brings; never raises for a feed's or a page's fault."""
    started, clock = now_utc(), time.monotonic()
    tally = _Tally()
    try:
        record = _poll(ctx, feed, started, tally)
    except MonitorError as exc:
        record = _failure(ctx, feed, started, tally, exc.reason, exc.message,
                          http_status=getattr(exc, "status", None),
                          retry_after=getattr(exc, "retry_after", None))
    except Exception as exc:  # a bug must not stop the other feeds: record it, loudly
        log.exception("internal error while polling %s", feed.url)
        record = _failure(ctx, feed, started, tally, "internal",
                          f"internal error: {exc.__class__.__name__}: {exc}; please report it")
    record = replace(record, worker=ctx.worker)
    streak = feed.error_streak + 1 if record.status == "error" else 0
    with ctx.engine.begin() as conn:
        record_poll(conn, record, error_streak=streak)
    _log_line(feed, record, time.monotonic() - clock, streak)
    return record


def _poll(ctx: PollContext, feed: FeedRow, started: datetime, tally: _Tally) -> PollRecord:
    http = ctx.settings.http
    with ctx.gate.slot(feed.url):
        fetched = ctx.fetcher.get(feed.url, etag=feed.etag, last_modified=feed.last_modified,
                                  max_bytes=http.max_feed_bytes)
    due = next_due(now_utc(), success_delay(feed.interval, ctx.settings.schedule))
    base = {"feed_id": feed.id, "started_at": started, "http_status": fetched.status,
            "bytes": len(fetched.content)}
    if fetched.not_modified:
        return PollRecord(finished_at=now_utc(), status="not-modified", next_due=due, **base)
    body_hash = hashlib.sha256(fetched.content).hexdigest()
    if body_hash == feed.body_hash:
        # Same bytes as the last complete poll (validators missing or ignored by the server).
        return PollRecord(finished_at=now_utc(), status="unchanged", next_due=due,
                          etag=fetched.etag, last_modified=fetched.last_modified,
                          body_hash=body_hash, **base)
    parsed = parse_feed(fetched.content, url=fetched.url, headers=fetched.headers)
    tally.entries = len(parsed.entries)
    rules = ctx.rules()
    for entry in parsed.entries:
        if ctx.stop.is_set():
            # Leave the validators as they were: the next poll sees these entries again.
            return PollRecord(finished_at=now_utc(), status="interrupted", next_due=now_utc(),
                              entries=tally.entries, new_items=tally.new_items,
                              relevant_items=tally.relevant_items,
                              page_errors=tally.page_errors, **base)
        try:
            _handle_entry(ctx, feed, entry, rules, tally)
        except Exception:
            tally.page_errors += 1
            log.exception("internal error on entry %s of %s", entry.link or entry.guid, feed.url)
    return PollRecord(finished_at=now_utc(), status="ok", next_due=due, entries=tally.entries,
                      new_items=tally.new_items, relevant_items=tally.relevant_items,
                      page_errors=tally.page_errors, etag=fetched.etag,
                      last_modified=fetched.last_modified, body_hash=body_hash, **base)


def _handle_entry(
    ctx: PollContext, feed: FeedRow, entry: Entry, rules: RuleSet, tally: _Tally
) -> None:
    canonical = canonical_url(entry.link) if entry.link else None
    with ctx.engine.connect() as conn:
        if is_known(conn, feed_id=feed.id, guid=entry.guid, canonical_url=canonical):
            return
    title, text, lang, published = entry.title, entry.summary, feed.lang, entry.published
    text_source, text_error, text_error_message = "summary", entry.link_problem, None
    if entry.link is None:
        text_error_message = f"entry {entry.guid!r} of {feed.url} has no usable link"
    else:
        try:
            with ctx.gate.slot(entry.link):
                page = ctx.fetcher.get(entry.link, max_bytes=ctx.settings.http.max_page_bytes)
            article = extract_article(page.content, url=page.url,
                                      content_type=page.headers.get("content-type"))
        except MonitorError as exc:
            tally.page_errors += 1
            text_error, text_error_message = exc.reason, exc.message
            log.info("page %s: %s (%s); keeping the feed's summary",
                     entry.link, exc.reason, exc.message)
        else:
            text, text_source = article.text, "page"
            title = title or article.title or ""
            lang = article.lang or lang
            published = published or article.published
    verdict = rules.classify(title, text)
    corpus_file = None
    if verdict.relevant:
        corpus_file = ctx.corpus.write(canonical or f"guid:{feed.url}#{entry.guid}", title, text)
    stored = insert_item(ctx.engine, NewItem(
        feed_id=feed.id, guid=entry.guid, url=entry.link, canonical_url=canonical,
        title=title, summary=entry.summary, published=published, fetched_at=now_utc(),
        lang=lang, text=text, text_source=text_source, text_error=text_error,
        text_error_message=text_error_message, content_hash=content_hash(text),
        relevant=verdict.relevant, score=verdict.score, topics=list(verdict.topics),
        matches=verdict.matches_with_rules(), rules_version=verdict.version,
        corpus_file=corpus_file,
    ))
    if stored is not None:
        tally.new_items += 1
        tally.relevant_items += int(verdict.relevant)


def _failure(
    ctx: PollContext, feed: FeedRow, started: datetime, tally: _Tally, reason: str, message: str,
    *, http_status: int | None = None, retry_after: str | None = None,
) -> PollRecord:
    now = now_utc()
    delay = failure_delay(feed.error_streak + 1, feed.interval, ctx.settings.schedule,
                          retry_after=retry_after_seconds(retry_after, now))
    return PollRecord(feed_id=feed.id, started_at=started, finished_at=now, status="error",
                      next_due=next_due(now, delay), http_status=http_status,
                      entries=tally.entries, new_items=tally.new_items,
                      relevant_items=tally.relevant_items, page_errors=tally.page_errors,
                      error_reason=reason, error_message=message)


def _log_line(feed: FeedRow, record: PollRecord, seconds: float, streak: int) -> None:
    line = (f"poll feed={feed.name!r} status={record.error_reason or record.status} "
            f"http={record.http_status or '-'} entries={record.entries} new={record.new_items} "
            f"relevant={record.relevant_items} page_errors={record.page_errors} "
            f"time={seconds:.2f}s")
    if record.status == "error":
        log.warning("%s error_streak=%d next=%s: %s", line, streak,
                    record.next_due.strftime("%H:%M:%S"), record.error_message)
    else:
        log.info(line)

