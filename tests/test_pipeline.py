"""The pipeline driven directly, in this process: `poll_feed` on feeds of real loopback sites,
into a real SQLite file. A feed's entries become items (pages fetched, extracted, classified,
the relevant ones written to the corpus) and its poll is handed to the recorder with its
validators; its failure is recorded, never raised. An entry's date is the item's; the page's
date is taken for an entry without one. One story brought by two feeds polled at
once is fetched once and stored once, the second feed recorded as one more source, whether
its page could be read or not (on both backends); entries sharing a page (a podcast's episodes,
a story listed twice under two GUIDs), in one feed or across two polled at once, get it fetched
once and are all sources of its one item, and `run --once` ends. A poll asked to stop ends at
once as "interrupted", keeps the entries it finished, leaves the feed's validators as they
were, and the next poll stores the rest, none twice. A large feed (5,000 items, most of them bare
<guid>s) is taken `http.max_entries` entries a poll, the newest first, its items committed in
batches while the poll runs; the next polls take the rest; no bare <guid> becomes an item."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from monitor.rules import RuleSet, load_ruleset
from monitor.settings import Settings, load_feeds, load_settings
from monitor.store.feeds import FeedRow, claim_due_feeds, sync_feeds
from monitor.worker.context import PollContext, now_utc
from monitor.worker.daemon import build_context
from monitor.worker.leases import worker_identity
from monitor.worker.pipeline import poll_feed
from tests.conftest import ROOT, SEEDS, Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import (
    HTML,
    RSS,
    large_feed,
    real_english_pages,
    rss,
    seed_article,
    seed_page,
)


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return load_ruleset(ROOT / "config" / "rules.yaml")


@pytest.fixture
def site():
    with LoopbackServer("127.0.0.61") as server:
        yield server


def _settings(project: Project, feeds: list[dict], **http) -> Settings:
    project.write_settings(schedule={"extract_processes": 1}, http=http)
    project.write_feeds(feeds)
    return load_settings(project.config, environ={})


@asynccontextmanager
async def _polling(settings: Settings, rules: RuleSet) -> AsyncIterator[PollContext]:
    """A worker's poll context, its feeds synced; on the way out the outcomes are written and
    everything closed."""
    ctx = build_context(settings, asyncio.Event(), lambda: rules, worker=worker_identity())
    try:
        await ctx.db(sync_feeds, load_feeds(settings.feeds_file), now_utc())
        yield ctx
    finally:
        await ctx.recorder.flush()
        await ctx.fetcher.close()
        await asyncio.to_thread(ctx.cpu.close)
        ctx.reader.dispose()
        ctx.engine.dispose()


async def _claim(ctx: PollContext) -> dict[str, FeedRow]:
    now = now_utc()
    rows = await ctx.db(claim_due_feeds, owner=ctx.worker, now=now, due_only=False,
                        lease_until=now + timedelta(minutes=10), limit=100)
    return {row.name: row for row in rows}


def _rows(ctx: PollContext, query: str) -> list:
    with ctx.engine.connect() as conn:
        return conn.execute(sa.text(query)).all()


def test_a_feed_polled_end_to_end_then_not_modified(
    project: Project, site: LoopbackServer, rules: RuleSet
) -> None:
    title, paragraphs = seed_article(SEEDS[1])
    site.route("/seed.html", Reply(seed_page(title, paragraphs), content_type=HTML))
    site.route("/world.html", Reply(real_english_pages(1)[0].read_bytes(), content_type=HTML))
    site.route("/feed.xml", Reply(rss([
        {"title": title, "link": site.url("/seed.html"), "guid": "seed"},
        {"title": "World", "link": site.url("/world.html"), "guid": "world"},
        {"title": "Gone", "link": site.url("/gone.html"), "guid": "gone", "summary": "Résumé."},
    ], link=site.base_url), content_type=RSS, conditional=True))
    site.route("/broken.xml", Reply(b"oops", status=500))
    settings = _settings(project, [{"url": site.url("/feed.xml"), "name": "Site", "lang": "fr"},
                                   {"url": site.url("/broken.xml"), "name": "Broken"}])

    async def scenario():
        async with _polling(settings, rules) as ctx:
            feeds = await _claim(ctx)
            first, failed = await asyncio.gather(poll_feed(ctx, feeds["Site"]),
                                                 poll_feed(ctx, feeds["Broken"]))
            await ctx.recorder.flush()
            again = await poll_feed(ctx, (await _claim(ctx))["Site"])
            return ctx, first, failed, again

    ctx, first, failed, again = asyncio.run(scenario())
    assert (first.status, first.entries, first.new_items, first.relevant_items,
            first.page_errors) == ("ok", 3, 3, 1, 1)
    assert first.etag and first.last_modified and first.body_hash
    assert (failed.status, failed.error_reason, failed.http_status) == ("error", "http-500", 500)
    assert again.status == "not-modified" and again.new_items == 0
    assert len(site.requests("/seed.html")) == 1 and len(site.requests("/feed.xml")) == 2
    stored = {row.guid: row for row in _rows(
        ctx, "SELECT guid, relevant, text_source, text_error, corpus_file FROM items")}
    assert stored["seed"].relevant and stored["seed"].text_source == "page"
    assert (project.corpus / stored["seed"].corpus_file).is_file()
    assert not stored["world"].relevant and stored["world"].corpus_file is None
    assert (stored["gone"].text_source, stored["gone"].text_error) == ("summary", "http-404")
    health = {row.name: row for row in _rows(ctx, "SELECT name, etag, error_streak, last_status "
                                                  "FROM feeds")}
    assert health["Site"].etag == first.etag and health["Site"].last_status == "not-modified"
    assert (health["Broken"].error_streak, health["Broken"].last_status) == (1, "http-500")


def test_an_entry_without_a_date_takes_its_pages_and_a_dated_one_keeps_its_own(
    project: Project, site: LoopbackServer, rules: RuleSet
) -> None:
    # Both pages say article:published_time 2024-05-02T09:30Z; the dated entry says 10:00Z.
    for name, seed in (("dated", SEEDS[0]), ("undated", SEEDS[2])):
        site.route(f"/{name}.html", Reply(seed_page(*seed_article(seed)), content_type=HTML))
    site.route("/feed.xml", Reply(rss([
        {"title": "Datée", "link": site.url("/dated.html"), "guid": "dated"},
        {"title": "Sans date", "link": site.url("/undated.html"), "guid": "undated",
         "undated": True},
    ], link=site.base_url), content_type=RSS))
    settings = _settings(project, [{"url": site.url("/feed.xml"), "name": "Site"}])

    async def scenario():
        async with _polling(settings, rules) as ctx:
            return ctx, await poll_feed(ctx, (await _claim(ctx))["Site"])

    ctx, record = asyncio.run(scenario())
    assert (record.status, record.new_items, record.page_errors) == ("ok", 2, 0)
    published = dict(_rows(ctx, "SELECT guid, published FROM items"))
    assert published == {"dated": "2024-05-02 10:00:00.000000",
                         "undated": "2024-05-02 09:30:00.000000"}


def test_one_story_through_two_feeds_at_once_is_fetched_once_and_stored_once(
    project: Project, backend: str, rules: RuleSet
) -> None:
    title, paragraphs = seed_article(SEEDS[0])
    with LoopbackServer("127.0.0.62") as news, LoopbackServer("127.0.0.63") as aggregator:
        # Slow pages: the second feed's poll finds the stories in flight, not yet stored.
        news.route("/story", Reply(seed_page(title, paragraphs), content_type=HTML, delay=0.5))
        news.route("/missing", Reply(b"no", status=404, delay=0.5))
        entries = [{"title": title, "link": news.url("/story"), "guid": "s"},
                   {"title": "Perdu", "link": news.url("/missing"), "guid": "m",
                    "summary": "Le résumé de la page perdue."}]
        news.route("/feed.xml", Reply(rss(entries, link=news.base_url), content_type=RSS))
        aggregator.route("/feed.xml", Reply(rss([
            {**entry, "guid": f"agg-{entry['guid']}", "link": entry["link"] + "?utm_source=agg"}
            for entry in entries], link=aggregator.base_url), content_type=RSS))
        settings = _settings(project, [{"url": news.url("/feed.xml"), "name": "News"},
                                       {"url": aggregator.url("/feed.xml"), "name": "Agg"}])

        async def scenario():
            async with _polling(settings, rules) as ctx:
                feeds = await _claim(ctx)
                records = await asyncio.gather(poll_feed(ctx, feeds["News"]),
                                               poll_feed(ctx, feeds["Agg"]))
                assert ctx.in_flight == {}
                return ctx, records

        ctx, records = asyncio.run(scenario())
        assert len(news.requests("/story")) == 1 and len(news.requests("/missing")) == 1
    assert sorted(record.new_items for record in records) == [0, 2]
    assert all(record.status == "ok" for record in records)
    stored = _rows(ctx, "SELECT id, text_source FROM items ORDER BY id")
    assert [row.text_source for row in stored] == ["page", "summary"]
    sources = _rows(ctx, "SELECT s.item_id, f.name FROM item_sources s "
                         "JOIN feeds f ON f.id = s.feed_id ORDER BY s.item_id, f.name")
    assert [tuple(row) for row in sources] == [
        (stored[0].id, "Agg"), (stored[0].id, "News"), (stored[1].id, "Agg"),
        (stored[1].id, "News")]


def test_a_poll_asked_to_stop_keeps_what_it_finished_and_the_next_stores_the_rest(
    project: Project, site: LoopbackServer, rules: RuleSet
) -> None:
    # Three entries without a link are done at once; three pages take far longer than a stop.
    quick = [{"title": f"Brève {n}", "guid": f"q{n}", "summary": f"La brève numéro {n}."}
             for n in range(3)]
    slow = [{"title": f"Page {n}", "link": site.url(f"/p{n}"), "guid": f"p{n}"} for n in range(3)]
    pages = {f"/p{n}": seed_page(f"Page {n}", [f"Texte {n}. " * 40]) for n in range(3)}
    for path, page in pages.items():
        site.route(path, Reply(page, content_type=HTML, delay=30))
    site.route("/feed.xml", Reply(rss(quick + slow, link=site.base_url), content_type=RSS,
                                  conditional=True))
    settings = _settings(project, [{"url": site.url("/feed.xml"), "name": "Site"}],
                         per_host_connections=4, read_timeout="60s", deadline="60s")

    async def scenario():
        async with _polling(settings, rules) as ctx:
            poll = asyncio.ensure_future(poll_feed(ctx, (await _claim(ctx))["Site"]))
            while not all(site.requests(path) for path in pages):
                await asyncio.sleep(0.02)
            stopped = time.monotonic()
            ctx.stop.set()
            cut = await poll
            waited = time.monotonic() - stopped
            await ctx.recorder.flush()
            kept = _rows(ctx, "SELECT guid FROM items")
            state = _rows(ctx, "SELECT etag, body_hash, last_status FROM feeds")[0]
            for path, page in pages.items():
                site.route(path, Reply(page, content_type=HTML))
            ctx.stop.clear()
            rest = await poll_feed(ctx, (await _claim(ctx))["Site"])
            return ctx, cut, waited, kept, state, rest

    ctx, cut, waited, kept, state, rest = asyncio.run(scenario())
    assert cut.status == "interrupted" and waited < 2
    assert (cut.entries, cut.new_items) == (6, 3)
    assert cut.etag is None and cut.body_hash is None  # the next poll sees every entry again
    assert {row.guid for row in kept} == {"q0", "q1", "q2"}
    assert (state.etag, state.body_hash, state.last_status) == (None, None, "interrupted")
    assert (rest.status, rest.new_items, rest.page_errors) == ("ok", 3, 0)
    guids = [row.guid for row in _rows(ctx, "SELECT guid FROM items")]
    assert sorted(guids) == ["p0", "p1", "p2", "q0", "q1", "q2"]


@pytest.mark.slow
def test_entries_sharing_pages_in_one_feed_and_across_two_finish_each_page_fetched_once(
    project: Project, backend: str
) -> None:
    # A podcast feed whose 30 episodes point at 3 show pages; a feed listing one updated story
    # twice under two GUIDs; an aggregator listing some of the same pages, twice each, polled
    # at the same time. Slow pages keep every poll in flight while the others look.
    pages = [page.read_bytes() for page in real_english_pages(4)]
    with LoopbackServer("127.0.0.71") as podcast, LoopbackServer("127.0.0.72") as aggregator:
        for path, page in zip(("/show/0", "/show/1", "/show/2", "/story"), pages, strict=True):
            podcast.route(path, Reply(page, content_type=HTML, delay=0.3))
        episodes = [{"title": f"Épisode {n}", "guid": f"ep-{n}",
                     "link": podcast.url(f"/show/{n % 3}?utm_source=rss&utm_content=ep{n}")}
                    for n in range(30)]
        podcast.route("/podcast.xml", Reply(rss(episodes, link=podcast.base_url),
                                            content_type=RSS))
        updated = [{"title": "Mise à jour", "guid": guid, "link": podcast.url("/story")}
                   for guid in ("story-v1", "story-v2")]
        podcast.route("/updated.xml", Reply(rss(updated, link=podcast.base_url),
                                            content_type=RSS))
        relayed = [{"title": f"Relais {n}", "guid": f"relay-{n}-{copy}", "link": podcast.url(path)}
                   for n, path in enumerate(["/show/0", "/show/1", "/story"])
                   for copy in ("a", "b")]
        aggregator.route("/feed.xml", Reply(rss(relayed, link=aggregator.base_url),
                                            content_type=RSS))
        project.write_feeds([{"url": podcast.url("/podcast.xml"), "name": "Podcast"},
                             {"url": podcast.url("/updated.xml"), "name": "Updated"},
                             {"url": aggregator.url("/feed.xml"), "name": "Relay"}])
        # Its own process, within a timeout: a poll waiting for itself fails the test.
        run = project.cli("run", "--once", own_process=True, timeout=30)
        assert "3 ok, 0 failed; 4 new items" in run.stdout, run.stdout
        for path in ("/show/0", "/show/1", "/show/2", "/story"):
            assert len(podcast.requests(path)) == 1, path
    engine = sa.create_engine(project.database_url or f"sqlite:///{project.database}")
    with engine.connect() as conn:
        stored = conn.execute(sa.text(
            "SELECT i.id, i.url, count(*) AS sources FROM items i "
            "JOIN item_sources s ON s.item_id = i.id WHERE i.feed_id IS NOT NULL "
            "GROUP BY i.id, i.url")).all()
        guids = conn.execute(sa.text("SELECT guid FROM item_sources WHERE feed_id IS NOT NULL"
                                     )).scalars().all()
    engine.dispose()
    by_page = {urlsplit(row.url).path: row.sources for row in stored}
    assert by_page == {"/show/0": 10 + 2, "/show/1": 10 + 2, "/show/2": 10, "/story": 2 + 2}
    assert sorted(guids) == sorted(e["guid"] for e in episodes + updated + relayed)
def test_a_large_feed_is_taken_newest_first_a_bounded_number_a_poll_in_batches(
    project: Project, site: LoopbackServer, rules: RuleSet, caplog: pytest.LogCaptureFixture
) -> None:
    # 5,000 items, 4,000 of them bare <guid>s; one of the newest has a page that is slow.
    slow = 7 * 5
    big = large_feed(5000, empty=lambda i: i % 5 != 0,
                     link=lambda i: site.url("/slow") if i == slow else None)
    site.route("/slow", Reply(seed_page("Lente", ["Un texte lent. " * 40]), content_type=HTML,
                              delay=2))
    site.route("/feed.xml", Reply(big.body, content_type=RSS, conditional=True))
    project.write_settings(schedule={"extract_processes": 1}, http={"max_entries": 400})
    project.write_feeds([{"url": site.url("/feed.xml"), "name": "Fil", "lang": "fr"}])
    settings = load_settings(project.config, environ={})

    async def scenario():
        async with _polling(settings, rules) as ctx:
            poll = asyncio.ensure_future(poll_feed(ctx, (await _claim(ctx))["Fil"]))
            stored_meanwhile = 0
            while not poll.done() and stored_meanwhile < 399:
                await asyncio.sleep(0.05)
                stored_meanwhile = (await asyncio.to_thread(
                    _rows, ctx, "SELECT count(*) FROM items"))[0][0]
            still_polling = not poll.done()
            polls, taken = [await poll], []
            while polls[-1].status == "ok" and len(polls) < 8:
                await ctx.recorder.flush()
                taken.append([row.guid for row in _rows(ctx, "SELECT guid FROM items")])
                polls.append(await poll_feed(ctx, (await _claim(ctx))["Fil"]))
            return ctx, still_polling, stored_meanwhile, polls, taken

    with caplog.at_level(logging.INFO, logger="monitor.poll"):
        ctx, still_polling, stored_meanwhile, polls, taken = asyncio.run(scenario())
    # The quick entries were committed while the slow page was still awaited.
    assert still_polling and stored_meanwhile == 399
    assert [(p.status, p.entries, p.new_items, p.page_errors) for p in polls] == [
        ("ok", 5000, 400, 0), ("ok", 5000, 400, 0), ("ok", 5000, 200, 0),
        ("not-modified", 0, 0, 0)]
    # Newest first, the rest by the next polls; the validators only once everything is taken.
    for count, guids in zip((400, 800, 1000), taken, strict=True):
        assert sorted(guids) == sorted(big.newest_first[:count])
    assert [p.etag is not None for p in polls[:3]] == [False, False, True]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("poll ")]
    assert "left=600" in lines[0] and "left=200" in lines[1] and "left=" not in lines[2]
    assert "skipped_empty=4000" in lines[0]
    # No bare <guid> became an item, and none was stored twice.
    rows = _rows(ctx, "SELECT guid, title, text FROM items")
    assert len(rows) == len({row.guid for row in rows}) == 1000
    assert all(row.title and row.text for row in rows)
