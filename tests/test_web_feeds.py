"""The inspector's feeds page beyond health: the page-error rate of each feed (flagged when its
article pages fail), a fresh install whose configured feeds were never polled (listed, with
what to run), and the poll buttons behind the token (a real poll of a loopback site). Served by
uvicorn on loopback over SQLite (`tests/webdata.py`)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import yaml

from monitor.settings import load_settings
from monitor.store.engine import create_schema, make_engine, read_engine
from monitor.store.polls import PollRecord, record_polls
from monitor.web import create_app
from tests.conftest import Project
from tests.sites import build_sites
from tests.webdata import NOW, Site, make_site, running, write_config


def test_a_feed_whose_article_pages_fail_is_flagged_with_its_rate(tmp_path: Path) -> None:
    settings, data = make_site(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    ids, when = data.feed_ids, NOW - timedelta(minutes=10)

    def poll(feed: str, new_items: int, page_errors: int, days_ago: int = 0) -> PollRecord:
        at = when - timedelta(days=days_ago)
        return PollRecord(feed_id=ids[feed], started_at=at, finished_at=at, status="ok",
                          next_due=NOW, new_items=new_items, page_errors=page_errors)

    writer = make_engine(settings.database_url)
    record_polls(writer, [(poll("الموقع العربي", 4, 4), 0), (poll("الموقع العربي", 2, 2), 0),
                          (poll("الموقع العربي", 9, 0, days_ago=40), 0),  # before the window
                          (poll("Le Site", 10, 1), 0)])
    writer.dispose()
    reader = read_engine(settings.database_url)
    with running(create_app(settings, engine=reader)) as base:
        site = Site(base, data, settings)
        twin = {f["name"]: f for f in site.json("/feeds.json")["feeds"]}
        page = site.html("/feeds")
        longer = {f["name"]: f for f in site.json("/feeds.json?days=60")["feeds"]}
        site.client.close()
    reader.dispose()
    arabic, le_site = twin["الموقع العربي"], twin["Le Site"]
    assert arabic["status"] == "ok"  # the feed itself is fine: its pages are not
    assert (arabic["page_errors"], arabic["pages"], arabic["page_error_rate"]) == (6, 6, 1.0)
    assert arabic["pages_failing"]
    # Le Site: 1 failure in 10 pages now, and 1 in the 10 of the fixture's polls
    assert le_site["page_error_rate"] == 0.1 and not le_site["pages_failing"]
    assert twin["Broken <b>feed</b>"]["page_error_rate"] is None  # no page tried
    assert longer["الموقع العربي"]["pages"] == 15 and not longer["الموقع العربي"]["pages_failing"]
    def row(feed: str) -> str:
        return page.split(f'<a href="/items?feed={ids[feed]}">')[1].split("</tr>")[0]

    arabic_row = row("الموقع العربي")
    assert '<span class="label pages-failing">pages failing</span>' in arabic_row
    assert "100% <small>(6/6)</small>" in arabic_row
    assert "pages failing" not in row("Le Site")


def test_a_fresh_install_lists_its_configured_feeds_and_says_what_to_run(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    create_schema(engine)  # `monitor init` on a new folder: no feed polled, no item
    engine.dispose()
    configured = yaml.safe_load(settings.feeds_file.read_text("utf-8"))["feeds"]
    reader = read_engine(settings.database_url)
    with running(create_app(settings, engine=reader)) as base:
        site = Site(base, None, settings)
        feeds = site.json("/feeds.json")
        page = site.html("/feeds")
        items = site.html("/items")
        # one feed more in feeds.yaml: seen without a restart
        settings.feeds_file.write_text(yaml.safe_dump({"feeds": [
            *configured, {"url": "https://new.example.ma/rss", "name": "Nouveau"}]},
            allow_unicode=True), "utf-8")
        again = site.json("/feeds.json")
        site.client.close()
    reader.dispose()
    assert [f["url"] for f in feeds["feeds"]] == [f["url"] for f in configured]
    assert all(f["id"] is None and f["last_poll"] is None for f in feeds["feeds"])
    assert feeds["never_polled"] == len(configured)
    assert f"{len(configured)} feeds are configured but never polled yet" in page
    assert "<code>monitor run --once</code>" in page and "never polled</span>" in page
    assert "Nouveau" in [f["name"] for f in again["feeds"]] and again["never_polled"] == 4
    assert "No item is stored yet" in items and "<code>monitor run --once</code>" in items
    assert "No item matches" not in items


def test_the_poll_button_behind_the_token_polls_the_feed_now(project: Project) -> None:
    sites = build_sites()
    try:
        feed = next(f for f in sites.feeds() if "broken" not in f["name"])
        project.write_feeds([feed])
        project.cli("init")
        settings = load_settings(project.config)
        reader = read_engine(settings.database_url)
        with running(create_app(settings, engine=reader, token="s3cret")) as base:
            client = httpx.Client(base_url=base, headers={"authorization": "Bearer s3cret"},
                                  timeout=60)
            page = client.get("/feeds").text
            assert (f'<form class="poll" method="post" action="/feeds/poll"><input '
                    f'type="hidden" name="url" value="{feed["url"]}">') in page
            assert client.get("/items.json?sort=kept").json()["total"]["count"] == 5  # seeds
            polled = client.post("/feeds/poll", data={"url": feed["url"]})
            assert polled.status_code == 303
            assert polled.headers["location"].startswith("/feeds?polled=")
            after = client.get(polled.headers["location"]).text
            assert f"Polled <bdi>{feed['name']}</bdi>: ok." in after
            kept = client.get("/items.json?sort=kept&feed=1").json()["items"]
            assert kept and all(item["feed"] == feed["name"] for item in kept)
            # not a feed of feeds.yaml; another site's form; no token: refused
            unknown = client.post("/feeds/poll", data={"url": "https://elsewhere.example/rss"})
            assert unknown.status_code == 400 and "feeds.yaml" in unknown.text
            forged = client.post("/feeds/poll", data={"url": feed["url"]},
                                 headers={"origin": "https://evil.example"})
            assert forged.status_code == 403
            assert httpx.post(f"{base}/feeds/poll", data={"url": feed["url"]}).status_code == 401
            client.close()
        reader.dispose()
        # without a token there is no button and no such route
        with running(create_app(settings, engine=read_engine(settings.database_url))) as base:
            assert "poll now" not in httpx.get(f"{base}/feeds").text
            assert httpx.post(f"{base}/feeds/poll", data={"url": feed["url"]}
                              ).status_code in (404, 405)
    finally:
        sites.close()
