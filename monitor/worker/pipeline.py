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
with its reason and the poll goes on; a database error (`StorageError`, reason ``storage``)
fails the poll it happens in.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from monitor.corpus import Corpus
from monitor.errors import ConnectFailed, HTTPStatus, MonitorError, StorageError
from monitor.feeds.intake import has_content, take_newest
from monitor.feeds.parse import Entry
from monitor.fetch.client import Fetched, Fetcher
from monitor.fetch.hostgate import HostGate
from monitor.fetch.robots import RobotsCache
from monitor.identity import canonical_url, content_hash
from monitor.neardup import merge_hash
from monitor.rules import RuleSet
from monitor.schedule import (
    adaptive_interval,
    failure_delay,
    next_due,
    retry_after_seconds,
    server_hint_seconds,
    success_delay,
)
from monitor.settings import Settings
from monitor.store.engine import Engine
from monitor.store.feeds import FeedRow, PollRecord
from monitor.store.items import (
    NewItem,
    add_sources,
    insert_items,
    known_guids,
    stories_by_url,
    story_of,
)
from monitor.worker.batches import run_in_batches
from monitor.worker.cpupool import CpuWork, PageText
from monitor.worker.recorder import PollRecorder

log = logging.getLogger("monitor.poll")
T = TypeVar("T")


@dataclass
class PollContext:
    settings: Settings
    engine: Engine
    reader: Engine  # for look-ups: on SQLite it never takes the write lock
    fetcher: Fetcher
    gate: HostGate
    robots: RobotsCache | None  # None: robots.txt not consulted (http.robots_txt: false)
    cpu: CpuWork
    corpus: Corpus
    recorder: PollRecorder
    rules: Callable[[], RuleSet]  # the current rules (they may be reloaded between polls)
    stop: asyncio.Event
    worker: str | None = None  # this worker's identity (host:pid:nonce), the owner of its leases
    # Canonical URLs whose stories a poll of this worker is fetching, each with a future done
    # once that poll has stored them: another feed bringing the same article waits for it
    # instead of fetching the page again.
    in_flight: dict[str, asyncio.Future] = field(default_factory=dict)

    async def db(self, function, *args, **kwargs):
        """A database call, in a thread: the event loop goes on meanwhile."""
        return await asyncio.to_thread(function, self.engine, *args, **kwargs)

    async def read(self, function, *args, **kwargs):
        """A read-only database call (on the reader), in a thread."""
        return await asyncio.to_thread(function, self.reader, *args, **kwargs)

    async def fetch(self, url: str, **kwargs) -> Fetched:
        """One request, within the host's politeness limits."""
        async with self.gate.slot(url):
            return await self.fetcher.get(url, **kwargs)


@dataclass
class _Tally:
    entries: int = 0
    new_items: int = 0
    relevant_items: int = 0
    page_errors: int = 0
    sources_added: int = 0
    left: int = 0  # new entries over http.max_entries, for the next polls
    empty: int = 0  # entries with neither a link nor any text, skipped


@dataclass
class _Story:
    """One new entry on its way to the store."""

    entry: Entry
    canonical: str | None
    item: NewItem | None = None
    canonicals: list[str] = field(default_factory=list)
    fetched_elsewhere: asyncio.Future | None = None  # another poll is fetching this story


def now_utc() -> datetime:
    return datetime.now(UTC)


async def poll_feed(ctx: PollContext, feed: FeedRow) -> PollRecord:
    """Poll one feed and store what it brings; never raises for a feed's or a page's fault."""
    started, clock = now_utc(), time.monotonic()
    tally = _Tally()
    try:
        record = await _poll(ctx, feed, started, tally)
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
    return record


async def _poll(ctx: PollContext, feed: FeedRow, started: datetime, tally: _Tally) -> PollRecord:
    settings = ctx.settings
    fetched = await ctx.fetch(feed.fetch_url, etag=feed.etag, last_modified=feed.last_modified,
                              max_bytes=settings.http.max_feed_bytes)
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
        return PollRecord(finished_at=now_utc(), status="not-modified",
                          next_due=_due(ctx, feed, kept), adaptive_interval=kept, **base)
    body_hash = hashlib.sha256(fetched.content).hexdigest()
    if body_hash == feed.body_hash:
        # Same bytes as the last complete poll (validators missing or ignored by the server).
        return PollRecord(finished_at=now_utc(), status="unchanged",
                          next_due=_due(ctx, feed, feed.adaptive_interval),
                          etag=fetched.etag, last_modified=fetched.last_modified,
                          body_hash=body_hash, **base)
    ctx.cpu.start_soon()  # news, perhaps: extraction processes start while pages are fetched
    parsed = await _unless_stopped(
        ctx, ctx.cpu.parse_feed(fetched.content, fetched.url, fetched.headers))
    if parsed is None:  # asked to stop while the feed was parsed (seconds for a large one)
        return PollRecord(finished_at=now_utc(), status="interrupted", next_due=now_utc(), **base)
    tally.entries = len(parsed.entries)
    learnt = adaptive_interval([e.published for e in parsed.entries], now, settings.schedule,
                               ttl_minutes=parsed.ttl_minutes, server_hint=hint,
                               previous=feed.adaptive_interval)
    guids = [entry.guid for entry in parsed.entries if has_content(entry)]  # not bare <guid>s
    known = await ctx.read(known_guids, feed.id, guids) if guids else set()
    new, seen = [], set(known)
    for entry in parsed.entries:
        if entry.guid not in seen:  # a feed may list one entry twice
            seen.add(entry.guid)
            new.append(entry)
    intake = take_newest(new, settings.http.max_entries)
    tally.left, tally.empty = intake.left, intake.empty
    fresh = [_Story(entry, canonical_url(entry.link) if entry.link else None)
             for entry in intake.taken]
    fresh = await _skip_stored(ctx, feed, fresh, tally)
    interrupted = await _handle_stories(ctx, feed, fresh, tally)
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
    due = (next_due(now_utc(), settings.schedule.min_interval) if tally.left
           else _due(ctx, feed, learnt))
    return PollRecord(finished_at=now_utc(), status="ok", next_due=due,
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


def _due(ctx: PollContext, feed: FeedRow, learnt: float | None) -> datetime:
    delay = success_delay(feed.interval, ctx.settings.schedule,
                          adaptive=learnt if ctx.settings.schedule.adaptive else None)
    return next_due(now_utc(), delay)


async def _skip_stored(ctx: PollContext, feed: FeedRow, stories: list[_Story],
                       tally: _Tally) -> list[_Story]:
    """The stories not stored yet; those stored already (the same article through another feed,
    by canonical URL) get this feed as one more source, and their pages are not fetched again."""
    urls = [story.canonical for story in stories if story.canonical]
    if not urls:
        return stories
    stored = await ctx.read(stories_by_url, urls)
    again = [(stored[story.canonical], story.entry) for story in stories
             if story.canonical in stored]
    if again:
        await ctx.db(add_sources, feed.id, _sources(again))
        tally.sources_added += len(again)
    return [story for story in stories if story.canonical not in stored]


async def _handle_stories(
    ctx: PollContext, feed: FeedRow, stories: list[_Story], tally: _Tally
) -> bool:
    """Fetch, extract and classify the new entries at once, then store them in one transaction.
    True if the worker was asked to stop before every entry was handled."""
    if not stories:
        return False
    mine = []
    for story in stories:
        if story.canonical in ctx.in_flight:
            story.fetched_elsewhere = ctx.in_flight[story.canonical]
        elif story.canonical:
            ctx.in_flight[story.canonical] = asyncio.get_running_loop().create_future()
            mine.append(story.canonical)
    try:
        return await _prepare_and_store(ctx, feed, stories, tally)
    finally:
        for canonical in mine:
            ctx.in_flight.pop(canonical).set_result(None)


async def _prepare_and_store(
    ctx: PollContext, feed: FeedRow, stories: list[_Story], tally: _Tally
) -> bool:
    """Prepare the stories a few at a time and store them in batches as they are ready
    (`worker.batches`). True if stopped before every story was handled."""

    async def store(finished: list[tuple[int, asyncio.Future]]) -> None:
        ready = []
        for number, task in finished:
            if isinstance(exc := task.exception(), StorageError):
                # The database failed, not the entry: the poll fails (reason storage) and keeps
                # its validators, so the next poll sees every entry not stored yet.
                raise exc
            if exc is not None:
                tally.page_errors += 1
                log.error("internal error on an entry of %s", feed.url, exc_info=exc)
            elif stories[number].item is not None:
                ready.append(stories[number])
        if ready:
            await ctx.db(_store, ctx, feed, ready, tally)

    jobs = [partial(_prepare, ctx, feed, story, tally) for story in stories]
    return await run_in_batches(jobs, store, ctx.stop)


async def _prepare(ctx: PollContext, feed: FeedRow, story: _Story, tally: _Tally) -> None:
    """Fetch and extract one entry's page and classify it: `story.item`, or None if the story
    turned out to be stored already (recorded as a source of it instead)."""
    entry = story.entry
    story.canonicals = [story.canonical] if story.canonical else []
    if story.fetched_elsewhere is not None:
        await asyncio.shield(story.fetched_elsewhere)
        found = await ctx.read(stories_by_url, story.canonicals)
        if found:
            await ctx.db(add_sources, feed.id, _sources([(found[story.canonical], entry)]))
            tally.sources_added += 1
            return
    title, text, lang, published = entry.title, entry.summary, feed.lang, entry.published
    text_source, text_error, text_error_message = "summary", entry.link_problem, None
    signature = page_canonical = digest = text_hash = None
    if entry.link is None:
        text_error_message = f"entry {entry.guid!r} of {feed.url} has no usable link"
    else:
        page = await _page_text(ctx, entry.link)
        if page.article is None:
            tally.page_errors += 1
            text_error, text_error_message = page.error_reason, page.error_message
        else:
            article = page.article
            text, text_source, signature = article.text, "page", page.signature
            digest, text_hash = page.content_hash, page.merge_hash
            title = title or article.title or ""
            lang = article.lang or lang
            published = published or article.published
            page_canonical = article.canonical_url
            if page_canonical and page_canonical not in story.canonicals:
                story.canonicals.append(page_canonical)
    if digest is None:  # the feed's summary
        digest = content_hash(text)
        text_hash = merge_hash(text, digest)
    # The page may show a story stored already (its canonical URL, or the same text); then no
    # corpus file is written for it. (`insert_items` checks again: another worker may race us.)
    found = await ctx.read(story_of, story.canonicals, text_hash)
    if found is not None:
        await ctx.db(add_sources, feed.id, _sources([(found, entry)]))
        tally.sources_added += 1
        return
    verdict = ctx.rules().classify(title, text)
    corpus_file = None
    if verdict.relevant:
        key = story.canonical or f"guid:{feed.url}#{entry.guid}"
        corpus_file = await asyncio.to_thread(ctx.corpus.write, key, title, text)
    story.item = NewItem(
        feed_id=feed.id, guid=entry.guid, url=entry.link, canonical_url=story.canonical,
        page_canonical_url=page_canonical, title=title, summary=entry.summary,
        published=published, fetched_at=now_utc(),
        lang=lang, text=text, text_source=text_source, text_error=text_error,
        text_error_message=text_error_message, content_hash=digest,
        relevant=verdict.relevant, score=verdict.score, topics=list(verdict.topics),
        matches=verdict.matches_with_rules(), rules_version=verdict.version,
        corpus_file=corpus_file, signature=signature,
    )


async def _page_text(ctx: PollContext, url: str) -> PageText:
    """The page's text, or why there is none (robots.txt, fetch error, no text), logged: the
    pages of a site that cannot be reached once for the site, by the robots.txt cache."""
    checked = ctx.robots is None
    try:
        if ctx.robots is not None:
            await ctx.robots.check(url)
            checked = True
            if (asked := ctx.robots.crawl_delay(url)) is not None:
                ctx.gate.slow_down(url, asked)
        page = await ctx.fetch(url, max_bytes=ctx.settings.http.max_page_bytes)
    except MonitorError as exc:
        text = PageText(None, None, error_reason=exc.reason, error_message=exc.message)
        logged = isinstance(exc, ConnectFailed) and not checked
    else:
        text = await ctx.cpu.extract_page(page.content, page.url,
                                          page.headers.get("content-type"))
        logged = False
    if text.article is None and not logged:
        log.info("page %s: %s (%s); keeping the feed's summary",
                 url, text.error_reason, text.error_message)
    return text


def _sources(stored: list[tuple[int, Entry]]) -> list[tuple[int, str, str | None]]:
    return [(item_id, entry.guid, entry.link) for item_id, entry in stored]


def _store(engine: Engine, ctx: PollContext, feed: FeedRow, stories: list[_Story],
           tally: _Tally) -> None:
    if not stories:
        return
    ids = insert_items(engine, [story.item for story in stories])
    for story, item_id in zip(stories, ids, strict=True):
        if item_id is None:
            tally.sources_added += 1
        else:
            tally.new_items += 1
            tally.relevant_items += int(story.item.relevant)


def _failure(ctx: PollContext, feed: FeedRow, started: datetime, tally: _Tally,
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
              tally: _Tally) -> None:
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
    if record.moved_to:
        log.warning("feed %r moved permanently: %s -> %s; monitor now fetches the new URL "
                    "(update feeds.yaml to match)", feed.name, feed.fetch_url, record.moved_to)
    if record.disabled_reason:
        log.warning("feed %r disabled: %s", feed.name, record.disabled_reason)
    if record.status == "error":
        log.warning("%s error_streak=%d next=%s: %s", line, streak,
                    record.next_due.strftime("%H:%M:%S"), record.error_message)
        if streak == ctx.settings.schedule.unhealthy_after:
            log.warning("feed %r is unhealthy: %d failures in a row (last: %s)",
                        feed.name, streak, record.error_reason)
    else:
        log.info(line)
