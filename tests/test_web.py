"""The web inspector over HTTP: the pages (status, content, escaping, paging, filters, search),
their JSON twins, the feeds page, PostgreSQL; served by uvicorn on loopback over a database
filled through the real schema and rules (`tests/webdata.py`). Atom, /healthz, /metrics, the
token and `monitor serve` are in test_web_outputs.py."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import feedparser
import pytest

from monitor.rules import load_ruleset
from monitor.settings import load_settings
from monitor.store.engine import create_schema, make_engine, read_engine
from monitor.web import create_app
from monitor.web.filters import BadParameter, ItemFilters, parse_filters
from monitor.web.highlight import segments
from tests.webdata import (
    HOSTILE_TEXT,
    HOSTILE_TITLE,
    NOW,
    Site,
    fill_database,
    make_site,
    metric_values,
    running,
    served_site,
    write_config,
)


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    yield from served_site(tmp_path_factory)


def ids_in_html(page: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="item[^"]*" id="item-(\d+)"', page)]


class TagCollector(HTMLParser):
    """The tags and attributes a browser would build from a page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(page: str) -> list[tuple[str, dict]]:
    collector = TagCollector()
    collector.feed(page)
    return collector.tags


# --- routes, twins -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/items", "/items?relevant=1", "/feeds",
                                  "/items?q=Maroc&lang=fr"])
def test_every_page_has_a_json_twin_from_the_same_context(site: Site, path: str) -> None:
    page = site.html(path)
    twin_path = re.search(r'<link rel="alternate" type="application/json" href="([^"]+)"',
                          page).group(1).replace("&amp;", "&")
    assert twin_path.split("?")[0] in ("/items.json", "/feeds.json")
    twin = site.json(twin_path)
    if twin["page"] == "items":
        assert ids_in_html(page) == [item["id"] for item in twin["items"]]
    else:
        for feed in twin["feeds"]:
            assert f'href="/items?feed={feed["id"]}"' in page


def test_item_page_and_its_twin(site: Site) -> None:
    item_id = site.data.ids["seed"]
    page = site.html(f"/items/{item_id}")
    twin = site.json(f"/items/{item_id}.json")
    assert twin["item"]["id"] == item_id and twin["page"] == "item"
    stored = site.data.by_id[item_id]
    assert twin["item"]["title"] == stored["title"] and twin["item"]["text"] == stored["text"]
    assert "".join(s["text"] for s in twin["text_segments"]) == stored["text"]
    assert f'href="{stored["url"]}"' in page  # link to the original
    assert 'rel="noopener noreferrer nofollow"' in page
    assert "Le Site" in page and stored["fetched_at"].isoformat() in page
    # the score built up rule by rule, ending on the stored score (same rules)
    explanation = twin["explanation"]
    assert explanation["same_as_stored"] and explanation["score"] == stored["score"]
    fired = [s for s in explanation["steps"] if s["fired"]]
    assert fired and fired[-1]["total"] == stored["score"]
    for step in fired:
        assert f"<td>{step['rule']}</td>" in page
    # matched terms highlighted in the text
    covered, position = set(), 0
    for segment in twin["text_segments"]:
        if segment["match"]:
            covered.update(range(position, position + len(segment["text"])))
        position += len(segment["text"])
    body_matches = [m for m in stored["matches"] if m["field"] == "body"]
    assert body_matches
    for match in body_matches:
        assert set(range(match["start"], match["end"])) <= covered, match
    marks = re.findall(r'<mark class="[^"]+" data-key="[^"]+" title="([^"]+)">([^<]+)</mark>',
                       page)
    assert len(marks) == sum(1 for s in twin["text_segments"] + twin["title_segments"]
                             if s["match"])
    assert any(word.lower() == "maroc" for _, word in marks)


def test_the_text_comes_first_then_the_rules_that_fired_then_the_others_folded(
        site: Site) -> None:
    page = site.html(f"/items/{site.data.ids['seed']}")
    steps = site.json(f"/items/{site.data.ids['seed']}.json")["explanation"]["steps"]
    body, why = page.index('<div class="body"'), page.index('<section class="why">')
    folded = page.index('<details class="more-rules">')
    assert body < why < folded
    idle = [s["rule"] for s in steps if not s["fired"]]
    assert idle and f"{len(idle)} rules that did not fire" in page
    for step in steps:  # fired rules before the fold, the others inside it
        at = page.index(f"<td>{step['rule']}</td>")
        assert (at > folded) == (not step["fired"]), step["rule"]


def test_matches_are_coloured_by_group_with_a_legend_and_penalties_apart(site: Site) -> None:
    twin = site.json(f"/items/{site.data.ids['seed']}.json")
    legend = {entry["group"]: entry for entry in twin["legend"]}
    # the seed names the United States: the foreign group, which only a penalty rule needs
    assert legend["foreign"]["penalty"] and legend["foreign"]["class"] == "penalty"
    assert not legend["morocco"]["penalty"] and legend["morocco"]["class"].startswith("g")
    colours = [e["class"] for e in twin["legend"] if not e["penalty"]]
    assert len(set(colours)) == min(len(colours), 8)  # distinct while there are colours left
    assert [e["key"] for e in twin["legend"]] == list(range(1, len(legend) + 1))
    page = site.html(f"/items/{site.data.ids['seed']}")
    for segment in twin["text_segments"] + twin["title_segments"]:
        if segment["match"]:
            first = legend[segment["match"]["groups"][0]]
            assert segment["match"]["class"] == first["class"]
            assert str(first["key"]) in segment["match"]["numbers"].split(",")
    marked = re.findall(r'<mark class="([^"]+)" data-key="([^"]+)"[^>]*>([^<]+)</mark>', page)
    assert ("penalty", str(legend["foreign"]["key"]), "États-Unis") in marked
    # the legend names each group beside its colour and number: no hovering needed
    for entry in twin["legend"]:
        assert (f'<span class="swatch {entry["class"]}">{entry["key"]}</span> '
                f'<span class="group">{entry["group"]}</span>') in page


def test_also_published_by_lists_the_same_text_in_other_feeds(site: Site) -> None:
    seed, copy = site.data.ids["seed"], site.data.ids["copy"]
    twin = site.json(f"/items/{seed}.json")
    assert [c["id"] for c in twin["also_published"]] == [copy]
    assert twin["also_published"][0]["feed"] == "الموقع العربي"
    page = site.html(f"/items/{seed}")
    assert "Also published by" in page and f'href="/items/{copy}"' in page
    alone = site.json(f"/items/{site.data.ids['arabic']}.json")
    assert alone["also_published"] == []


def test_static_css_atom_health_metrics_routes(site: Site) -> None:
    css = site.get("/static/style.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    assert site.get("/feed.atom").headers["content-type"].startswith("application/atom+xml")
    assert site.get("/healthz").json()["database"] == "ok"
    assert site.get("/metrics").headers["content-type"].startswith("text/plain; version=0.0.4")


def test_errors_are_pages_too(site: Site) -> None:
    missing = site.get("/items/999999")
    assert missing.status_code == 404 and "no item with id 999999" in missing.text
    assert site.get("/items/999999.json").json() == {"error": "no item with id 999999",
                                                      "status": 404}
    bad = site.get("/items.json?limit=0")
    assert bad.status_code == 400 and "limit" in bad.json()["error"]
    bad_html = site.get("/items?since=yesterday")
    assert bad_html.status_code == 400 and "YYYY-MM-DD" in bad_html.text
    assert site.get("/feeds.json?days=1000").status_code == 400
    assert site.get("/nowhere").status_code == 404


@pytest.mark.parametrize("path", [
    "/items/9223372036854775808", "/items/9223372036854775808.json", "/items/" + "9" * 5000,
    "/items.json?before=9223372036854775808", "/items?feed=9223372036854775808",
    "/items.json?feed=" + "9" * 5000, "/feed.atom?feed=9223372036854775808",
])
def test_integers_past_the_largest_id_are_400s(site: Site, path: str) -> None:
    answer = site.get(path)  # was a 500 (OverflowError in the driver)
    assert answer.status_code == 400
    assert "is out of range; use a number from" in answer.text and "2147483647" in answer.text
    assert "Traceback" not in answer.text


def test_read_only_and_safe_headers(site: Site) -> None:
    assert site.client.post("/items", data={"x": "1"}).status_code == 405
    assert site.client.delete(f"/items/{site.data.ids['seed']}").status_code == 405
    response = site.get("/items")
    # our one script file runs, nothing inline nor from elsewhere
    assert "script-src 'self';" in response.headers["content-security-policy"]
    assert "unsafe" not in response.headers["content-security-policy"]
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"  # no referrer to other sites
    assert re.fullmatch(r"app;dur=\d+\.\d+", response.headers["server-timing"])


def test_an_edit_of_the_rules_is_seen_even_within_the_same_second_and_size(
        tmp_path: Path) -> None:
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    data = fill_database(engine, load_ruleset(settings.rules_file), filler=0)
    engine.dispose()
    rules_file, item = settings.rules_file, f"/items/{data.ids['seed']}"
    reader = read_engine(settings.database_url)
    with running(create_app(settings, engine=reader)) as base:
        site = Site(base, data, settings)
        assert site.json(f"{item}.json")["explanation"]["threshold"] == 3
        # Saved again by rename (as editors do) with the same size and modification time: a
        # file system with a coarse clock, or an edit within the same tick.
        before, edited = rules_file.stat(), rules_file.with_name("rules.yaml.new")
        edited.write_text(rules_file.read_text("utf-8").replace("threshold: 3\n",
                                                                "threshold: 4\n"), "utf-8")
        os.utime(edited, ns=(before.st_atime_ns, before.st_mtime_ns))
        os.replace(edited, rules_file)
        after = rules_file.stat()
        assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
        assert site.json(f"{item}.json")["explanation"]["threshold"] == 4
        # An invalid edit: the last good rules stay, and the pages say why.
        rules_file.write_text("threshold: [\n", "utf-8")
        assert site.json(f"{item}.json")["explanation"]["threshold"] == 4
        assert "The rules could not be reloaded" in site.html(item)
        assert "YAML syntax error" in site.html("/items")
        site.client.close()
    reader.dispose()


# --- escaping ------------------------------------------------------------------------------

def _no_live_markup(page: str) -> None:
    scripts = [attrs for tag, attrs in tags(page) if tag == "script"]
    assert scripts == [{"src": "/static/keys.js", "defer": None}]  # ours, in the head
    assert page.lower().count("<script") == 1
    assert not any("onerror" in attrs for _, attrs in tags(page))
    assert not any(tag == "img" for tag, _ in tags(page))


@pytest.mark.parametrize("path", ["/items", "/items?q=DGSSI", "/items?q=%3Cscript%3E",
                                  "/items/{hostile}", "/feeds", "/items/{hostile}.json"])
def test_stored_markup_is_shown_as_text_never_run(site: Site, path: str) -> None:
    response = site.get(path.format(hostile=site.data.ids["hostile"]))
    assert response.status_code == 200
    if path.endswith(".json"):
        assert response.json()["item"]["title"] == HOSTILE_TITLE
        return
    page = response.text
    _no_live_markup(page)
    if "hostile" in path or path == "/items":
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;" in page
    if path == "/feeds":
        assert "&lt;script&gt;alert(5)&lt;/script&gt;" in page
        assert "Broken &lt;b&gt;feed&lt;/b&gt;" in page


def test_highlighted_text_escapes_every_segment(site: Site) -> None:
    page = site.html(f"/items/{site.data.ids['hostile']}")
    body = re.search(r'<div class="body"[^>]*>(.*?)</div>', page, re.S).group(1)
    plain = re.sub(r"</?mark[^>]*>", "", body)
    assert plain == (HOSTILE_TEXT.replace("&", "&amp;").replace("<", "&lt;")
                     .replace(">", "&gt;").replace('"', "&#34;").replace("'", "&#39;"))
    assert body.count("<mark") >= 4  # Maroc, DGSSI, maCERT, loi 05-20, …


def test_segments_cover_the_text_once_and_skip_bad_offsets() -> None:
    text = "a <b>Maroc</b> IA"
    matches = [{"term": "maroc", "group": "g", "field": "body", "start": 5, "end": 10},
               {"term": "x", "group": "g", "field": "body", "start": 6, "end": 8},  # overlap
               {"term": "IA", "group": "g", "field": "body", "start": 15, "end": 17},
               {"term": "t", "group": "g", "field": "title", "start": 0, "end": 1},
               {"term": "bad", "group": "g", "field": "body", "start": 10, "end": 99}]
    out = segments(text, matches, field="body")
    assert "".join(s["text"] for s in out) == text
    assert [s["text"] for s in out if s["match"]] == ["Maroc", "IA"]
    assert out[1]["match"]["terms"] == ["maroc", "x"]  # the overlapping match is merged in
    overlapping = segments("abcdef", [{"term": "a", "start": 0, "end": 3},
                                      {"term": "b", "start": 2, "end": 5}])
    assert [s["text"] for s in overlapping] == ["abcde", "f"]
    assert segments("", [], field="body") == [{"text": "", "match": None}]


# --- paging and filters --------------------------------------------------------------------

def test_keyset_paging_walks_every_item_once(site: Site) -> None:
    seen, path, pages = [], "/items.json?limit=40", 0
    while path:
        page = site.json(path)
        seen += [item["id"] for item in page["items"]]
        path = page["next"]["json"] if page["next"] else None
        pages += 1
    assert seen == site.data.all_ids and pages == -(-len(seen) // 40)
    html = site.html("/items?limit=40")
    older = re.search(r'<a rel="next" href="([^"]+)">', html).group(1).replace("&amp;", "&")
    assert older == f"/items?before={site.data.all_ids[39]}&limit=40"
    second = site.html(older)
    assert ids_in_html(second) == site.data.all_ids[40:80]
    assert 'href="/items?limit=40">« first' in second
    assert 'rel="prev" href="/items?limit=40">' in second  # the first page again


def test_paging_keeps_the_filters(site: Site) -> None:
    first = site.json("/items.json?relevant=0&lang=en&limit=50")
    assert first["next"]["json"].startswith("/items.json?relevant=0&lang=en&before=")
    second = site.json(first["next"]["json"])
    ids = [i["id"] for i in first["items"] + second["items"]]
    expected = [i for i in site.data.all_ids
                if not site.data.by_id[i]["relevant"] and site.data.by_id[i]["lang"] == "en"]
    assert ids == expected[:100]


def _ids(site: Site, query: str) -> list[int]:
    return [item["id"] for item in site.json(f"/items.json?limit=500&{query}")["items"]]


def test_filters(site: Site) -> None:
    data = site.data
    rows = data.by_id
    assert _ids(site, "relevant=1") == data.relevant_ids
    assert _ids(site, "relevant=0") == [i for i in data.all_ids if not rows[i]["relevant"]]
    cyber = _ids(site, "topic=cyber")
    assert cyber and cyber == [i for i in data.all_ids if "cyber" in rows[i]["topics"]]
    arabic_feed = data.feed_ids["الموقع العربي"]
    assert _ids(site, f"feed={arabic_feed}") == [data.ids["arabic"], data.ids["copy"]]
    assert _ids(site, "lang=ar") == [data.ids["arabic"]]
    today = NOW.date()
    assert _ids(site, f"kept_since={today}") == [
        i for i in data.all_ids if rows[i]["fetched_at"].date() >= today]
    seed_day = rows[data.ids["seed"]]["fetched_at"].date()
    assert data.ids["seed"] in _ids(site, f"kept_since={seed_day}&kept_until={seed_day}")
    assert _ids(site, f"kept_since={seed_day}&kept_until={seed_day}") == [
        i for i in data.all_ids if rows[i]["fetched_at"].date() == seed_day]
    # since and until: the day published
    published_day = rows[data.ids["seed"]]["published"].date()
    assert _ids(site, f"since={published_day}&until={published_day}") == [
        i for i in data.all_ids if rows[i]["published"].date() == published_day]
    assert _ids(site, "topic=nothing-like-this") == []
    # the form shows the filters in force
    page = site.html(f"/items?feed={arabic_feed}&lang=ar&relevant=1")
    assert f'<option value="{arabic_feed}" selected>' in page
    assert '<option value="ar" selected>' in page and '<option value="1" selected>' in page


def test_search_finds_words_and_phrases_with_filters(site: Site) -> None:
    data = site.data
    assert _ids(site, "q=DGSSI")[0] == data.ids["hostile"]
    assert data.ids["hostile"] in _ids(site, "q=dgssi")  # case-insensitive
    assert _ids(site, 'q="loi 05-20" maCERT') == [data.ids["hostile"]]
    assert _ids(site, "q=الاصطناعي") == [data.ids["arabic"]]
    assert _ids(site, "q=zzzz-nowhere") == []
    assert _ids(site, "q=World&lang=fr") == []
    assert site.json("/items.json?q=DGSSI")["search"] == {"q": "DGSSI", "index": "fts5"}
    assert _ids(site, "q=cybersecurite DGSSI") == [data.ids["hostile"]]  # accents ignored
    assert _ids(site, "q=DGSSI -maCERT") == []
    assert site.get("/items.json?q=-sport").status_code == 400
    found = site.json("/items.json?q=weather&limit=5")
    assert len(found["items"]) == 5 and found["next"] is not None
    assert all(item["hits"] for item in found["items"])
    page = site.html("/items?q=DGSSI")
    assert '<mark title="DGSSI">DGSSI</mark>' in page or '<mark title="dgssi">' in page


def test_arabic_is_right_to_left_and_french_accents_survive(site: Site) -> None:
    arabic = site.data.ids["arabic"]
    page = site.html(f"/items/{arabic}")
    assert '<h1 dir="rtl" lang="ar">' in page and '<div class="body" dir="rtl" lang="ar">' in page
    assert "استراتيجية وطنية" in page
    listing = site.html("/items?lang=ar")
    assert f'id="item-{arabic}"' in listing and 'dir="rtl" lang="ar"' in listing
    assert site.get("/items").headers["content-type"] == "text/html; charset=utf-8"
    assert "cybersécurité" in site.html(f"/items/{site.data.ids['hostile']}")
    assert 'dir="auto"' in site.html("/items?lang=fr")


def test_filter_parsing() -> None:
    parsed = parse_filters({"relevant": "1", "topic": "cyber", "feed": "3", "lang": "fr",
                            "since": "2026-01-01", "until": "2026-01-31", "q": " IA ",
                            "sort": "kept", "before": "77", "limit": "20"})
    assert parsed.query() == {"relevant": "1", "topic": "cyber", "feed": "3", "lang": "fr",
                              "since": "2026-01-01", "until": "2026-01-31", "q": "IA",
                              "sort": "kept", "before": "77", "limit": "20"}
    assert (parsed.published_since, parsed.since) == (date(2026, 1, 1), None)  # publication
    # a search is best match first unless told, and pages by offset
    ranked = parse_filters({"q": "IA", "before": "77", "start": "50"})
    assert ranked.ranked and ranked.query() == {"q": "IA", "start": "50"}
    assert parse_filters({}).query(order="score") == {"sort": "score"}
    assert parse_filters({"relevant": "", "q": "  "}) == ItemFilters()
    for bad in ({"limit": "501"}, {"before": "x"}, {"relevant": "maybe"}, {"lang": "french!"},
                {"before": "2147483648"}, {"feed": "9" * 5000}, {"limit": "9" * 5000},
                {"since": "2026-02-01", "until": "2026-01-01"}, {"topic": "<b>"},
                {"sort": "match"}, {"sort": "random", "q": "x"},
                {"kept_since": "2026-02-01", "kept_until": "2026-01-01"}):
        with pytest.raises(BadParameter):
            parse_filters(bad)


# --- feeds -------------------------------------------------------------------------------------

def test_feeds_page_health_yield_and_chart(site: Site) -> None:
    twin = site.json("/feeds.json?days=7")
    by_name = {f["name"]: f for f in twin["feeds"]}
    le_site = by_name["Le Site"]
    data = site.data
    mine = [i for i in data.all_ids if data.by_id[i]["feed_id"] == le_site["id"]]
    assert le_site["items"] == len(mine)
    relevant = sum(1 for i in mine if data.by_id[i]["relevant"])
    assert le_site["relevant_items"] == relevant
    assert le_site["relevant_share"] == round(relevant / len(mine), 3)
    assert len(le_site["days"]) == 7 and twin["days"] == 7
    first = date.fromisoformat(twin["first_day"])
    recent = [i for i in mine if data.by_id[i]["fetched_at"].date() >= first]
    assert sum(d["items"] for d in le_site["days"]) == len(recent)
    assert le_site["items_per_day"] == round(len(recent) / 7, 2)
    assert sum(d["relevant"] for d in le_site["days"]) == sum(
        1 for i in recent if data.by_id[i]["relevant"])
    broken = by_name["Broken <b>feed</b>"]
    assert broken["error_streak"] == 3 and broken["status"] == "timeout"
    assert broken["relevant_share"] is None and broken["items_per_day"] == 0
    page = site.html("/feeds")
    assert page.count("<svg") == 1 + len(twin["feeds"])
    assert "3 in a row" in page and "timed out" in page
    assert f'<td class="n">{le_site["items"]}</td>' in page
    assert f'{twin["totals"]["items"]} items, {twin["totals"]["relevant_items"]} relevant' in page
    assert "<script" not in page.split("<svg")[1]



def test_feeds_page_labels_unhealthy_stopped_and_moved_feeds(tmp_path: Path) -> None:
    from datetime import timedelta

    from monitor.settings import ScheduleSettings
    from monitor.store.polls import PollRecord, record_polls
    from monitor.web.pages import feeds_page

    settings, data = make_site(tmp_path, f"sqlite:///{tmp_path / 'monitor.db'}")
    ids = data.feed_ids
    when = NOW - timedelta(minutes=10)

    def poll(feed: str, status: str = "ok", **values) -> PollRecord:
        return PollRecord(feed_id=ids[feed], started_at=when, finished_at=when, status=status,
                          next_due=NOW, **values)

    writer = make_engine(settings.database_url)
    record_polls(writer, [
        (poll("Broken <b>feed</b>", "error", error_reason="timeout", error_message="timed out"),
         6),
        (poll("الموقع العربي", "error", error_reason="http-410", error_message="410 Gone",
              disabled_reason="http-410"), 1),
        (poll("Le Site", moved_to="https://new.lesite.example.ma/<i>rss</i>",
              adaptive_interval=5400.0), 0),
    ])
    writer.dispose()
    reader = read_engine(settings.database_url)
    with running(create_app(settings, engine=reader)) as base:
        site = Site(base, data, settings)
        twin = {f["name"]: f for f in site.json("/feeds.json")["feeds"]}
        page = site.html("/feeds")
        site.client.close()
    broken, arabic, le_site = twin["Broken <b>feed</b>"], twin["الموقع العربي"], twin["Le Site"]
    assert broken["unhealthy"] and broken["error_streak"] == 6
    assert arabic["disabled_reason"] == "http-410" and not arabic["unhealthy"]
    assert le_site["fetch_url"] == "https://new.lesite.example.ma/<i>rss</i>"
    assert (le_site["interval"], le_site["interval_source"]) == (5400.0, "adaptive")
    assert (broken["interval"], broken["interval_source"]) == (1800.0, "default")
    labels = [attrs["class"] for tag, attrs in tags(page)
              if tag == "span" and "label" in attrs.get("class", "")]
    assert sorted(labels) == ["label moved", "label stopped", "label unhealthy"]
    assert ">stopped: http-410</span>" in page and ">unhealthy</span>" in page
    assert "moved</span> to <span class=\"url\">https://new.lesite.example.ma/&lt;i&gt;rss" in page
    assert "90 min <small>(adaptive)</small>" in page
    rows = [attrs["class"] for tag, attrs in tags(page) if tag == "tr" and "class" in attrs]
    assert sorted(rows) == ["failing stopped", "failing unhealthy", "healthy moved"]
    # the threshold comes from the settings' schedule section
    strict = feeds_page(reader, schedule=ScheduleSettings(unhealthy_after=7))
    assert not any(feed["unhealthy"] for feed in strict["feeds"])
    reader.dispose()

# --- PostgreSQL ----------------------------------------------------------------------------

@pytest.mark.postgres
def test_the_inspector_on_postgresql(postgres_url: str, tmp_path: Path) -> None:
    settings, data = make_site(tmp_path, postgres_url)
    engine = read_engine(postgres_url)
    with running(create_app(settings, engine=engine)) as base:
        site = Site(base, data, settings)
        assert _ids(site, "relevant=1") == data.relevant_ids
        cyber = _ids(site, "topic=cyber")
        assert cyber == [i for i in data.all_ids if "cyber" in data.by_id[i]["topics"]]
        assert _ids(site, "q=dgssi")[0] == data.ids["hostile"]
        assert site.json("/items.json?q=dgssi")["search"]["index"] == "tsvector"
        assert _ids(site, "q=cybersecurite DGSSI -sport") == [data.ids["hostile"]]
        today = NOW.date()
        assert _ids(site, f"kept_since={today}") == [
            i for i in data.all_ids if data.by_id[i]["fetched_at"].date() >= today]
        feeds = site.json("/feeds.json?days=5")
        first = date.fromisoformat(feeds["first_day"])
        assert sum(sum(d["items"] for d in f["days"]) for f in feeds["feeds"]) == len(
            [i for i in data.all_ids if data.by_id[i]["fetched_at"].date() >= first])
        values = metric_values(site.get("/metrics").text)
        assert values["monitor_poll_duration_seconds_count"] == 6
        assert abs(values["monitor_poll_duration_seconds_sum"] - 42.35) < 0.01
        item = site.json(f"/items/{data.ids['seed']}.json")
        assert [c["id"] for c in item["also_published"]] == [data.ids["copy"]]
        # ids are 32-bit there: past that, a 400, not the database's "integer out of range"
        assert site.get("/items/2147483648.json").status_code == 400
        assert site.get("/items.json?before=2147483648").status_code == 400
        assert site.get("/items/2147483647.json").status_code == 404
        assert not feedparser.parse(site.get("/feed.atom").content).bozo
        assert site.get("/healthz").json()["database"] == "ok"
        site.client.close()
    engine.dispose()


def test_json_twin_is_plain_json(site: Site) -> None:
    raw = site.get("/items.json?limit=3").text
    assert json.loads(raw)["limit"] == 3
    assert "\\u0645" not in site.get("/items.json?lang=ar").text  # UTF-8, not escapes


def test_search_without_the_index_falls_back_to_substrings(tmp_path: Path) -> None:
    from monitor.store.schema import metadata
    from monitor.web.listing import items_page

    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'old.db'}")
    settings = load_settings(config)
    engine = make_engine(settings.database_url)
    metadata.create_all(engine)  # tables only: no full-text index (a database before 0003)
    data = fill_database(engine, load_ruleset(settings.rules_file), filler=10)
    reader = read_engine(settings.database_url)

    def found(q: str, **filters) -> list[int]:
        page = items_page(reader, parse_filters({"q": q, **filters}), None)
        return [item["id"] for item in page["items"]]

    assert items_page(reader, parse_filters({"q": "DGSSI"}), None)["search"]["index"] == (
        "substring")
    assert found("dgssi") == [data.ids["hostile"]]
    assert found('"loi 05" maCERT') == [data.ids["hostile"]]
    assert found("DGSSI -maCERT") == []
    assert found("World", lang="fr") == []
    fillers = sorted((i for key, i in data.ids.items() if key.startswith("filler")),
                     reverse=True)
    assert found("weather", limit="3") == fillers[:3]
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE items SET title = 'x 100% y' WHERE id = ?",
                             (data.ids["seed"],))
    assert found("100%") == [data.ids["seed"]]  # % is no wildcard: only "100" is looked for
    reader.dispose()
    engine.dispose()


def test_also_published_by_tells_sources_from_near_duplicates(tmp_path: Path) -> None:
    from datetime import timedelta

    from sqlalchemy import text

    from monitor.identity import canonical_url, content_hash
    from monitor.settings import FeedSpec
    from monitor.store.feeds import sync_feeds
    from monitor.store.items import NewItem, insert_items

    texts = [json.loads(line) for line in (Path(__file__).parent / "fixtures" / "neardup" /
                                            "texts.jsonl").read_text("utf-8").splitlines()]
    ocp = next(t["text"] for t in texts if t["id"] == "mfn-8465c54ed54b")
    settings, data = make_site(tmp_path, f"sqlite:///{tmp_path / 'web.db'}")
    engine = make_engine(settings.database_url)
    sync_feeds(engine, [FeedSpec(url=f"https://{n}.example.ma/rss", name=n)
                        for n in ("Medias24", "Boursenews", "Le Matin")], NOW)
    with engine.connect() as conn:
        ids = dict(conn.execute(text("SELECT name, id FROM feeds")).all())

    def item(feed: str, guid: str, url: str, text: str) -> NewItem:
        return NewItem(
            feed_id=ids[feed], guid=guid, url=url, canonical_url=canonical_url(url),
            title="OCP Nutricrops dépasse les 5 millions de tonnes", summary="",
            published=None, fetched_at=NOW - timedelta(minutes=len(guid)), lang="fr",
            text=text, text_source="page", text_error=None, text_error_message=None,
            content_hash=content_hash(text), relevant=False, score=0.0, topics=[], matches=[],
            rules_version="r", corpus_file=None)

    first, same, copy = insert_items(engine, [
        item("Medias24", "m-1", "https://medias24.example.ma/ocp", ocp),
        item("Boursenews", "b-1", "https://medias24.example.ma/ocp?utm_source=bn", ocp),
        item("Le Matin", "l-1", "https://lematin.example.ma/ocp", "(MAP) – " + ocp[:-300]),
    ])
    assert same is None and copy is not None
    engine.dispose()
    with running(create_app(settings, engine=read_engine(settings.database_url))) as base:
        site = Site(base, data, settings)
        twin = site.json(f"/items/{first}.json")
        assert [s["feed"] for s in twin["other_sources"]] == ["Boursenews"]
        assert twin["other_sources"][0]["url"].endswith("?utm_source=bn")
        assert [(c["id"], c["feed"], c["relation"]) for c in twin["also_published"]] == [
            (copy, "Le Matin", "near-duplicate")]
        assert "signature" not in twin["item"]
        page = site.html(f"/items/{first}")
        assert "other feeds that brought this item" in page and "Boursenews" in page
        assert f'href="/items/{copy}"' in page and "near-duplicate" in page
        back = site.json(f"/items/{copy}.json")
        assert [(c["id"], c["relation"]) for c in back["also_published"]] == [
            (first, "near-duplicate")]
        assert back["other_sources"] == []
        site.client.close()
