"""A poll's new entries to stored items: one fetch per story, the page read, classified, stored.

In: the new entries of one poll (`Story`), the `PollContext`, the feed. Out: items stored in
batches as they are ready (`worker.batches`), the feed added as a source of stories stored
already, the poll's `PollTally` counted; whether the worker was asked to stop first. Runs on
the worker's event loop; pages are fetched there, extraction goes to the process pool,
database calls to threads. A `StorageError` (the database or the corpus folder) is raised for
the poll to fail; any other error of one entry is counted as a page error and logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field, replace
from functools import partial

from monitor.alerts.select import Candidate, alerts_for
from monitor.errors import ConnectFailed, MonitorError, StorageError
from monitor.feeds.parse import Entry
from monitor.identity import content_hash
from monitor.neardup import merge_hash
from monitor.store.feeds import FeedRow
from monitor.store.items import (
    NewItem,
    add_sources,
    insert_items,
    stories_by_url,
    story_of,
)
from monitor.worker.batches import run_in_batches
from monitor.worker.context import PollContext, PollTally, now_utc
from monitor.worker.cpupool import PageText
from monitor.worker.watchdog import Stages

log = logging.getLogger("monitor.poll")


@dataclass
class Story:
    """One new entry on its way to the store."""

    entry: Entry
    canonical: str | None
    item: NewItem | None = None
    canonicals: list[str] = field(default_factory=list)
    fetched_elsewhere: asyncio.Future | None = None  # another poll is fetching this story
    # An earlier entry of this same poll with the same canonical URL (a podcast's episodes
    # pointing at one page, a story listed twice under two GUIDs): this entry waits for that
    # one's preparation, never for the end of its own poll.
    same_as: Story | None = None
    prepared: asyncio.Future | None = None  # done once this story's `_prepare` has ended


async def skip_stored(ctx: PollContext, feed: FeedRow, stories: list[Story],
                      stored: dict[str, int], tally: PollTally) -> list[Story]:
    """The stories not stored yet, by `stored` ({canonical URL: item}, `stories_by_url`); those
    stored already (the same article through another feed) get this feed as one more source,
    and their pages are not fetched again."""
    again = [(stored[story.canonical], story.entry) for story in stories
             if story.canonical in stored]
    if again:
        await ctx.db(add_sources, feed.id, _sources(again))
        tally.sources_added += len(again)
    return [story for story in stories if story.canonical not in stored]


async def handle_stories(
    ctx: PollContext, feed: FeedRow, stories: list[Story], tally: PollTally
) -> bool:
    """Fetch, extract, classify and store the new entries (`_prepare_and_store`). True if the
    worker was asked to stop before every entry was handled.

    One fetch per story: the first entry of this poll with a canonical URL takes it, unless
    another poll has it in flight (then it waits for that poll to store it); the later entries
    of this poll with that URL wait for the first (`same_as`), never for the end of their own
    poll. A story this poll has in flight is released to the others once its batch is stored.
    """
    if not stories:
        return False
    first: dict[str, Story] = {}  # canonical URL -> the first entry of this poll with it
    mine: set[str] = set()
    for story in stories:
        if story.canonical is None:
            continue
        if story.canonical in first:
            story.same_as = first[story.canonical]
            continue
        first[story.canonical] = story
        if story.canonical in ctx.in_flight:
            story.fetched_elsewhere = ctx.in_flight[story.canonical]
        else:
            ctx.in_flight[story.canonical] = asyncio.get_running_loop().create_future()
            mine.add(story.canonical)
    try:
        return await _prepare_and_store(ctx, feed, stories, tally, mine)
    finally:
        _release(ctx, mine, list(mine))


def _release(ctx: PollContext, mine: set[str], canonicals: list[str | None]) -> None:
    """Let the polls waiting for these stories (in flight here) look them up."""
    for canonical in canonicals:
        if canonical in mine:
            mine.discard(canonical)
            ctx.in_flight.pop(canonical).set_result(None)


async def _prepare_and_store(
    ctx: PollContext, feed: FeedRow, stories: list[Story], tally: PollTally, mine: set[str]
) -> bool:
    """Prepare the stories a few at a time and store them in batches as they are ready
    (`worker.batches`). True if stopped before every story was handled."""

    async def store(finished: list[tuple[int, asyncio.Future]]) -> None:
        ready = []
        for number, task in finished:
            if isinstance(exc := task.exception(), StorageError):
                # The database or the corpus folder failed, not the entry: the poll fails
                # (storage-error) and keeps its validators, so the next poll sees every entry
                # not stored yet.
                raise exc
            if exc is not None:
                tally.page_errors += 1
                log.error("internal error on an entry of %s", feed.url, exc_info=exc)
            elif stories[number].item is not None:
                ready.append(stories[number])
        if ready:
            await tally.stages.run("store", _store(ctx, ready, tally))
        _release(ctx, mine, [stories[number].canonical for number, _ in finished])

    async def prepare(story: Story) -> None:
        try:
            await _prepare(ctx, feed, story, tally)
        finally:  # the entries of this poll with the same link wait for this, however it ends
            story.prepared.set_result(None)

    loop = asyncio.get_running_loop()
    for story in stories:
        story.prepared = loop.create_future()
    jobs = [partial(prepare, story) for story in stories]
    return await run_in_batches(jobs, store, ctx.stop)


async def _prepare(ctx: PollContext, feed: FeedRow, story: Story, tally: PollTally) -> None:
    """Fetch and extract one entry's page and classify it: `story.item`, or None if the story
    turned out to be stored already (recorded as a source of it instead)."""
    entry = story.entry
    story.canonicals = [story.canonical] if story.canonical else []
    if story.same_as is not None:
        await tally.stages.run("wait for an entry with the same link",
                               asyncio.wait([story.same_as.prepared]))  # however it ended
        if story.same_as.item is not None:
            # Stored with it in this poll's transaction, which records this entry as one more
            # source of the story (`insert_items` finds it by canonical URL).
            story.item = replace(story.same_as.item, guid=entry.guid, url=entry.link,
                                 summary=entry.summary)
            return
    if story.fetched_elsewhere is not None:
        await tally.stages.run("wait for another feed's poll",
                               asyncio.shield(story.fetched_elsewhere))
    if story.fetched_elsewhere is not None or story.same_as is not None:
        found = await tally.stages.run("look-ups", ctx.read(stories_by_url, story.canonicals))
        if found:
            await ctx.db(add_sources, feed.id, _sources([(found[story.canonical], entry)]))
            tally.sources_added += 1
            return
    title, text, lang, published = entry.title, entry.summary, feed.lang, entry.published
    text_source, text_error, text_error_message = "summary", entry.link_problem, None
    signature = bands = page_canonical = digest = text_hash = None
    if entry.link is None:
        text_error_message = f"entry {entry.guid!r} of {feed.url} has no usable link"
    else:
        tally.pages += 1
        page = await _page_text(ctx, entry.link, tally.stages,
                                find_published=published is None)
        if page.article is None:
            tally.page_errors += 1
            text_error, text_error_message = page.error_reason, page.error_message
        else:
            article = page.article
            text, text_source, signature = article.text, "page", page.signature
            bands = page.band_keys
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
    verdict = ctx.rules().classify(title, text)
    corpus_file = None
    if verdict.relevant:
        # The page may show a story stored already (its canonical URL, or the same text): then
        # no corpus file is written for it. An item without one needs no look-up here: storing
        # it finds the story the same way (`insert_items`), and records this entry as a source.
        found = await tally.stages.run("look-ups", ctx.read(story_of, story.canonicals,
                                                            text_hash))
        if found is not None:
            await ctx.db(add_sources, feed.id, _sources([(found, entry)]))
            tally.sources_added += 1
            return
        key = story.canonical or f"guid:{feed.url}#{entry.guid}"
        corpus_file = await tally.stages.run("write corpus file", asyncio.to_thread(
            ctx.corpus.write, key, title, text))
    story.item = NewItem(
        feed_id=feed.id, guid=entry.guid, url=entry.link, canonical_url=story.canonical,
        page_canonical_url=page_canonical, title=title, summary=entry.summary,
        published=published, fetched_at=now_utc(),
        lang=lang, text=text, text_source=text_source, text_error=text_error,
        text_error_message=text_error_message, content_hash=digest,
        relevant=verdict.relevant, score=verdict.score, topics=list(verdict.topics),
        matches=verdict.matches_with_rules(), rules_version=verdict.version,
        corpus_file=corpus_file, signature=signature, band_keys=bands, merge_hash=text_hash,
        alerts=alerts_for(ctx.settings.alerts, Candidate(
            verdict.topics, lang, feed.name, feed.url, verdict.score, published))
        if verdict.relevant else (),
    )


async def _page_text(ctx: PollContext, url: str, stages: Stages, *,
                     find_published: bool) -> PageText:
    """The page's text, or why there is none (robots.txt, fetch error, no text), logged: the
    pages of a site that cannot be reached once for the site, by the robots.txt cache. The
    page's date is looked for only when `find_published` (the entry has none)."""
    checked = ctx.robots is None
    try:
        if ctx.robots is not None:
            await stages.run("robots.txt", ctx.robots.check(url))
            checked = True
            if (asked := ctx.robots.crawl_delay(url)) is not None:
                ctx.gate.slow_down(url, asked)
        page = await stages.run("fetch page", ctx.fetch(
            url, max_bytes=ctx.settings.http.max_page_bytes))
        text = await stages.run("extract", ctx.cpu.extract_page(
            page.content, page.url, page.headers.get("content-type"), find_published))
    except MonitorError as exc:
        text = PageText(None, None, error_reason=exc.reason, error_message=exc.message)
        logged = isinstance(exc, ConnectFailed) and not checked
    else:
        logged = False
    if text.article is None and not logged:
        log.info("page %s: %s (%s); keeping the feed's summary",
                 url, text.error_reason, text.error_message)
    return text


def _sources(stored: list[tuple[int, Entry]]) -> list[tuple[int, str, str | None]]:
    return [(item_id, entry.guid, entry.link) for item_id, entry in stored]


async def _store(ctx: PollContext, stories: list[Story], tally: PollTally) -> None:
    """Store the stories' items, with the other polls' of this worker (`ItemWriter`)."""
    ids = await ctx.item_writer.store(partial(ctx.db, insert_items),
                                      [story.item for story in stories])
    for story, item_id in zip(stories, ids, strict=True):
        if item_id is None:
            tally.sources_added += 1
        else:
            tally.new_items += 1
            tally.relevant_items += int(story.item.relevant)
