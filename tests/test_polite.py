"""Polite polling through the real command line, at real loopback servers: moved feeds (301/308)
fetched at their new URL, gone feeds (410) disabled with a visible reason, 429 honoured,
robots.txt obeyed for pages (a site that cannot be reached is a connection failure, logged
once), the per-host limit held during a whole run, adaptive intervals
learnt, and one story stored once when several feeds bring it. (`run --once` prepares the
database itself, as `init` does.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import sqlalchemy as sa

from tests.conftest import SEEDS, Project, project_engine
from tests.httpserver import LoopbackServer, Redirect, Reply
from tests.sites import HTML, RSS, rss, seed_article, seed_page


def _feeds(project: Project) -> dict[str, dict]:
    out = project.cli("feeds", "list", "--json").stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {row["name"]: row for row in rows}


def _page(title: str, words: str, *, canonical: str | None = None) -> bytes:
    page = seed_page(title, [words] * 3)
    if canonical:
        page = page.replace(b"</head>", f'<link rel="canonical" href="{canonical}"></head>'
                            .encode())
    return page


@pytest.fixture
def site():
    with LoopbackServer("127.0.0.41") as server:
        yield server


def test_moved_feed_is_fetched_at_its_new_url_and_gone_feed_is_disabled(
    project: Project, site: LoopbackServer
) -> None:
    feed = rss([{"title": "Un", "link": site.url("/a1"), "guid": "a1"}], link=site.base_url)
    site.route("/old.xml", Redirect("/new.xml", status=301))
    site.route("/new.xml", Reply(feed, content_type=RSS, conditional=True))
    site.route("/old308.xml", Redirect("/new308.xml", status=308))
    site.route("/new308.xml", Reply(feed, content_type=RSS, conditional=True))
    site.route("/temp.xml", Redirect("/new2.xml", status=302))
    site.route("/new2.xml", Reply(feed.replace(b"a1", b"b1"), content_type=RSS))
    site.route("/gone.xml", Reply(b"gone", status=410))
    site.route("/a1", Reply(_page("Un", "mot " * 80), content_type=HTML))
    site.route("/b1", Reply(_page("Deux", "autre " * 80), content_type=HTML))
    project.write_feeds([
        {"url": site.url("/old.xml"), "name": "Moved"},
        {"url": site.url("/old308.xml"), "name": "Moved 308"},
        {"url": site.url("/temp.xml"), "name": "Temporary"},
        {"url": site.url("/gone.xml"), "name": "Gone"},
    ])
    first = project.cli("run", "--once")
    assert "polled 4 feeds" in first.stdout
    assert f"moved permanently: {site.url('/old.xml')} -> {site.url('/new.xml')}" in first.stderr
    assert f"moved permanently: {site.url('/old308.xml')} -> {site.url('/new308.xml')}" \
        in first.stderr
    assert "'Gone' disabled: gone:" in first.stderr
    feeds = _feeds(project)
    assert feeds["Moved"]["fetch_url"] == site.url("/new.xml")
    assert feeds["Moved 308"]["fetch_url"] == site.url("/new308.xml")
    assert feeds["Temporary"]["fetch_url"] in (None, site.url("/temp.xml"))  # 302: not moved
    assert feeds["Gone"]["disabled_reason"].startswith("gone:")
    assert "410" in feeds["Gone"]["disabled_reason"]
    listing = project.cli("feeds", "list").stdout
    assert "gone:" in listing

    second = project.cli("run", "--once")
    assert "polled 3 feeds" in second.stdout  # the gone feed is no longer polled
    assert len(site.requests("/old.xml")) == 1  # the moved feed is fetched at its new URL
    assert len(site.requests("/old308.xml")) == 1 and len(site.requests("/new308.xml")) == 2
    assert len(site.requests("/new.xml")) == 2
    assert site.requests("/new.xml")[-1].headers.get("if-none-match")
    assert len(site.requests("/temp.xml")) == 2
    assert len(site.requests("/gone.xml")) == 1
    assert len(site.requests("/a1")) == 1


def test_429_is_honoured_and_failures_mark_a_feed_unhealthy(
    project: Project, site: LoopbackServer
) -> None:
    site.route("/busy.xml", Reply(b"slow down", status=429, headers={"Retry-After": "7200"}))
    site.route("/broken.xml", Reply(b"oops", status=500))
    project.write_settings(schedule={"unhealthy_after": 2, "max_backoff": "1h"})
    project.write_feeds([{"url": site.url("/busy.xml"), "name": "Busy"},
                         {"url": site.url("/broken.xml"), "name": "Broken"}])
    before = datetime.now(UTC)
    assert project.cli("run", "--once", check=False).returncode == 1  # every feed failed
    feeds = _feeds(project)
    assert feeds["Busy"]["status"] == "http-429"
    due = datetime.fromisoformat(feeds["Busy"]["next_due"])
    assert due >= before + timedelta(seconds=7200)  # longer than the backoff: Retry-After wins
    assert not feeds["Broken"]["unhealthy"]
    run = project.cli("run", "--once", check=False)
    assert run.returncode == 1
    assert "'Broken' is unhealthy: 2 failures in a row" in run.stderr
    feeds = _feeds(project)
    assert feeds["Broken"]["unhealthy"] and feeds["Broken"]["error_streak"] == 2
    assert "UNHEALTHY: 2 failures in a row" in project.cli("feeds", "list").stdout


def test_robots_txt_is_obeyed_for_pages(project: Project, site: LoopbackServer) -> None:
    site.route("/robots.txt", Reply(b"User-agent: *\nDisallow: /private/\n",
                                    content_type="text/plain"))
    entries = [{"title": "Privé", "link": site.url("/private/p1"), "guid": "p1",
                "summary": "Le résumé du flux pour la page privée."},
               {"title": "Public", "link": site.url("/public/p2"), "guid": "p2"},
               {"title": "Public 2", "link": site.url("/public/p3"), "guid": "p3"}]
    site.route("/feed.xml", Reply(rss(entries, link=site.base_url), content_type=RSS))
    for path in ("/private/p1", "/public/p2", "/public/p3"):
        site.route(path, Reply(_page(path, f"texte {path} " * 60), content_type=HTML))
    project.write_feeds([{"url": site.url("/feed.xml"), "name": "Site"}])
    project.cli("run", "--once")
    assert site.requests("/private/p1") == []
    assert len(site.requests("/public/p2")) == 1 and len(site.requests("/public/p3")) == 1
    assert len(site.requests("/robots.txt")) == 1  # cached for the site
    with project_engine(project).connect() as conn:
        row = conn.execute(sa.text("SELECT text, text_source, text_error FROM items "
                                   "WHERE guid = 'p1'")).one()
    assert row.text_error == "robots-disallowed" and row.text_source == "summary"
    assert "résumé du flux" in row.text


def test_pages_of_a_site_that_cannot_be_reached_are_a_connection_failure_said_once(
    project: Project, site: LoopbackServer
) -> None:
    # Nobody listens on port 9 of this loopback address: every connection is refused.
    down = "http://127.0.0.42:9"
    entries = [{"title": f"Dépêche {n}", "link": f"{down}/news/{n}", "guid": f"d{n}",
                "summary": f"Le résumé de la dépêche {n}."} for n in range(6)]
    site.route("/feed.xml", Reply(rss(entries, link=site.base_url), content_type=RSS))
    project.write_feeds([{"url": site.url("/feed.xml"), "name": "Site"}])
    run = project.cli("run", "--once")
    with project_engine(project).connect() as conn:
        rows = conn.execute(sa.text("SELECT text_source, text_error, text_error_message "
                                    "FROM items WHERE feed_id IS NOT NULL")).all()
    assert len(rows) == 6
    assert {(row.text_source, row.text_error) for row in rows} == {("summary", "connect-failed")}
    assert all("127.0.0.42:9 cannot be reached" in row.text_error_message for row in rows)
    assert "robots-disallowed" not in run.stderr
    about_the_site = [line for line in run.stderr.splitlines() if down in line]
    assert len(about_the_site) == 1 and "127.0.0.42:9 cannot be reached" in about_the_site[0]


def test_a_crawl_delay_spaces_the_pages_of_its_site(project: Project, site: LoopbackServer) -> None:
    site.route("/robots.txt", Reply(b"User-agent: *\nCrawl-delay: 0.4\n",
                                    content_type="text/plain"))
    paths = [f"/p{i}" for i in range(4)]
    site.route("/feed.xml", Reply(rss([{"title": p, "link": site.url(p), "guid": p}
                                       for p in paths], link=site.base_url), content_type=RSS))
    for path in paths:
        site.route(path, Reply(_page(path, f"texte {path} " * 60), content_type=HTML))
    project.write_settings(http={"per_host_delay": 0, "per_host_connections": 4})
    project.write_feeds([{"url": site.url("/feed.xml"), "name": "Site"}])
    project.cli("run", "--once")
    starts = sorted(site.requests(path)[0].at for path in paths)
    gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    assert len(starts) == 4 and min(gaps) >= 0.38  # asked for, though the config says 0


def test_robots_txt_can_be_ignored(project: Project, site: LoopbackServer) -> None:
    site.route("/robots.txt", Reply(b"User-agent: *\nDisallow: /\n", content_type="text/plain"))
    site.route("/feed.xml", Reply(rss([{"title": "P", "link": site.url("/p"), "guid": "p"}],
                                      link=site.base_url), content_type=RSS))
    site.route("/p", Reply(_page("P", "texte " * 80), content_type=HTML))
    project.write_settings(http={"robots_txt": False})
    project.write_feeds([{"url": site.url("/feed.xml"), "name": "Site"}])
    project.cli("run", "--once")
    assert len(site.requests("/p")) == 1 and site.requests("/robots.txt") == []


def _most_at_once(server: LoopbackServer, paths: list[str], duration: float) -> int:
    starts = sorted(r.at for path in paths for r in server.requests(path))
    return max(sum(1 for other in starts if start <= other < start + duration)
               for start in starts)


def test_per_host_connections_hold_for_a_whole_run(project: Project) -> None:
    with LoopbackServer("127.0.0.42") as busy, LoopbackServer("127.0.0.43") as other:
        paths = [f"/f{i}.xml" for i in range(8)]
        for server in (busy, other):
            for path in paths:
                server.route(path, Reply(rss([], link=server.base_url), content_type=RSS,
                                         delay=0.3))
        project.write_settings(http={"per_host_connections": 2},
                               schedule={"workers": 16})
        project.write_feeds([{"url": server.url(path), "name": f"{server.host} {path}"}
                             for server in (busy, other) for path in paths])
        project.cli("run", "--once")
        assert _most_at_once(busy, paths, 0.25) == 2
        assert _most_at_once(other, paths, 0.25) == 2
        # The two hosts were polled side by side, not one after the other.
        assert abs(busy.requests(paths[0])[0].at - other.requests(paths[0])[0].at) < 0.25


def test_adaptive_interval_follows_the_publication_rate(project: Project) -> None:
    now = datetime.now(UTC)
    with LoopbackServer("127.0.0.44") as server:
        def feed(step: timedelta, tag: str) -> bytes:
            items = "".join(
                f"<item><title>{tag} {i}</title><guid>{tag}{i}</guid>"
                f"<pubDate>{format_datetime(now - step * i)}</pubDate></item>"
                for i in range(10))
            return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{tag}</title>'
                    f"{items}</channel></rss>").encode()

        server.route("/busy.xml", Reply(feed(timedelta(minutes=20), "busy"), content_type=RSS))
        server.route("/quiet.xml", Reply(feed(timedelta(days=2), "quiet"), content_type=RSS))
        project.write_settings(schedule={"min_interval": "5m", "max_interval": "1d"})
        project.write_feeds([{"url": server.url("/busy.xml"), "name": "Busy"},
                             {"url": server.url("/quiet.xml"), "name": "Quiet"},
                             {"url": server.url("/quiet.xml") + "?fixed", "name": "Fixed",
                              "interval": "45m"}])
        project.cli("run", "--once")
    feeds = _feeds(project)
    busy, quiet, fixed = feeds["Busy"], feeds["Quiet"], feeds["Fixed"]
    assert busy["interval_source"] == "adaptive" and quiet["interval_source"] == "adaptive"
    assert 300 <= busy["interval"] <= 3600
    assert quiet["interval"] >= 6 * 3600
    assert fixed["interval_source"] == "configured" and fixed["interval"] == 2700
    due = {name: datetime.fromisoformat(row["next_due"]) for name, row in feeds.items()}
    assert due["Busy"] < due["Fixed"] < due["Quiet"]


def test_one_story_through_three_feeds_is_stored_once(project: Project) -> None:
    title, paragraphs = seed_article(SEEDS[0])
    article = seed_page(title, paragraphs)
    with LoopbackServer("127.0.0.45") as news, LoopbackServer("127.0.0.46") as a, \
            LoopbackServer("127.0.0.47") as b:
        news.route("/story", Reply(article, content_type=HTML))
        # An outlet reprinting it word for word under its own URL, declaring the original.
        b.route("/copy", Reply(article.replace(b"</head>", f'<link rel="canonical" href="'
                                               f'{news.url("/story")}"></head>'.encode()),
                               content_type=HTML))
        news.route("/feed.xml", Reply(rss([{"title": title, "link": news.url("/story"),
                                            "guid": "n1"}], link=news.base_url),
                                      content_type=RSS))
        a.route("/feed.xml", Reply(rss([{"title": title, "guid": "a-77",
                                         "link": news.url("/story") + "?utm_source=rss&fbclid=x"}],
                                       link=a.base_url), content_type=RSS))
        b.route("/feed.xml", Reply(rss([{"title": title, "link": b.url("/copy"), "guid": "b9"}],
                                       link=b.base_url), content_type=RSS))
        project.write_feeds([{"url": news.url("/feed.xml"), "name": "News"},
                             {"url": a.url("/feed.xml"), "name": "Aggregator"},
                             {"url": b.url("/feed.xml"), "name": "Reprint"}])
        project.write_settings(schedule={"workers": 1})  # one after the other: a stable order
        project.cli("run", "--once")
        assert len(news.requests("/story")) == 1  # never fetched twice
    with project_engine(project).connect() as conn:
        stored = conn.execute(sa.text("SELECT id FROM items WHERE feed_id IS NOT NULL")).all()
        sources = conn.execute(sa.text(
            "SELECT f.name FROM item_sources s JOIN feeds f ON f.id = s.feed_id "
            "ORDER BY f.name")).scalars().all()
    assert len(stored) == 1
    assert sources == ["Aggregator", "News", "Reprint"]
