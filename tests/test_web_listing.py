"""The inspector's items listing as an analyst uses it: the order (publication time by default,
score or time kept on request, best match first for a search), publication-date filters, the
total and the facets beside the filters, previous and next pages, the exports of the current
filter, headings, excerpts and chips. Served by uvicorn on loopback over the database of
`tests/webdata.py`, plus two items kept last: one published a year ago, one without a date."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from monitor.identity import content_hash
from monitor.store.engine import make_engine, read_engine
from monitor.store.listings import newest_items
from monitor.store.schema import items
from monitor.web import create_app
from monitor.web.facets import FacetCounts
from monitor.web.filters import parse_filters
from monitor.web.listing import without_title
from tests.webdata import NOW, Site, make_site, running


def _late_item(key: str, published, feed_id: int) -> dict:
    text = f"Late {key}\n\nOld news about the harbour {key}."  # the headline first
    return {"feed_id": feed_id, "guid": key, "url": f"https://news.example.ma/{key}",
            "canonical_url": f"https://news.example.ma/{key}", "title": f"Late {key}",
            "summary": text, "published": published, "fetched_at": NOW, "lang": "en",
            "text": text, "text_source": "summary", "text_error": None,
            "text_error_message": None, "content_hash": content_hash(text), "relevant": False,
            "score": 1.0, "topics": ["ai"], "matches": [], "rules_version": "r",
            "corpus_file": None}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("listing")
    settings, data = make_site(folder, f"sqlite:///{folder / 'monitor.db'}")
    writer = make_engine(settings.database_url)
    feed = data.feed_ids["Le Site"]
    with writer.begin() as conn:
        for key, published in (("year-old", NOW - timedelta(days=365)), ("undated", None)):
            row = _late_item(key, published, feed)
            data.ids[key] = conn.execute(items.insert().values(**row)).inserted_primary_key[0]
            data.by_id[data.ids[key]] = {**row, "id": data.ids[key]}
    writer.dispose()
    data.all_ids = sorted(data.by_id, reverse=True)
    engine = read_engine(settings.database_url)
    with running(create_app(settings, engine=engine)) as base:
        built = Site(base, data, settings)
        yield built
        built.client.close()
    engine.dispose()


def _ids(site: Site, query: str = "") -> list[int]:
    return [i["id"] for i in site.json(f"/items.json?limit=500&{query}")["items"]]


def _published(row: dict):
    return row["published"] or row["fetched_at"]


def test_newest_published_first_by_default_then_score_or_kept(site: Site) -> None:
    rows = site.data.by_id
    by_publication = sorted(rows, key=lambda i: (_published(rows[i]), i), reverse=True)
    assert _ids(site) == by_publication
    listed = _ids(site)
    # kept last, published a year ago: far down, not on top; undated: its time kept
    assert listed.index(site.data.ids["year-old"]) == len(listed) - 1
    assert listed[0] == site.data.ids["undated"]
    assert _ids(site, "sort=kept") == site.data.all_ids
    assert _ids(site, "sort=score") == sorted(rows, key=lambda i: (rows[i]["score"], i),
                                              reverse=True)
    page = site.html("/items?sort=score")
    assert '<option value="score" selected>best score</option>' in page
    assert "best score first" in page


def test_since_and_until_are_publication_days(site: Site) -> None:
    rows, old = site.data.by_id, site.data.ids["year-old"]
    day = rows[old]["published"].date()
    assert _ids(site, f"since={day}&until={day}") == [old]  # kept today, published then
    assert old not in _ids(site, f"kept_since={day}&kept_until={day}")
    assert old in _ids(site, f"kept_since={NOW.date()}")


def test_total_and_facets_count_the_selection(site: Site) -> None:
    rows = site.data.by_id
    everything = site.json("/items.json?limit=10")
    assert everything["total"] == {"count": len(rows), "at_least": False,
                                   "facets_of_first": None}
    assert everything["count"] == 10
    page = site.html("/items?limit=10")
    assert f'<span class="total">10 of {len(rows)}</span>' in page

    relevant = site.json("/items.json?relevant=1")
    expected = [r for r in rows.values() if r["relevant"]]
    assert relevant["total"]["count"] == len(expected)
    topics = {v["value"]: v["count"] for v in relevant["facets"]["topic"]}
    assert topics == {t: sum(t in r["topics"] for r in expected)
                      for t in {t for r in expected for t in r["topics"]}}
    feeds = {v["label"]: v["count"] for v in relevant["facets"]["feed"]}
    names = {i: n for n, i in site.data.feed_ids.items()}
    assert feeds == {names[f]: sum(r["feed_id"] == f for r in expected)
                     for f in {r["feed_id"] for r in expected}}
    langs = {v["value"]: v for v in site.json("/items.json")["facets"]["lang"]}
    assert langs["ar"]["count"] == sum(r["lang"] == "ar" for r in rows.values())
    # a facet value links to the selection narrowed by it; in force, to its removal
    assert langs["ar"]["href"] == "/items?lang=ar" and not langs["ar"]["active"]
    narrowed = site.json(langs["ar"]["href"].replace("/items", "/items.json"))
    assert narrowed["total"]["count"] == langs["ar"]["count"]
    active = next(v for v in narrowed["facets"]["lang"] if v["value"] == "ar")
    assert active["active"] and active["href"] == "/items"
    # a date filter or a search is counted live
    day = NOW.date()
    dated = site.json(f"/items.json?since={day}")
    assert dated["total"]["count"] == sum(_published(r).date() >= day for r in rows.values())
    found = site.json("/items.json?q=weather")
    assert found["total"]["count"] == sum("weather" in r["text"] for r in rows.values())


def test_facet_counts_are_capped_for_dates_and_remade_when_old(
        site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    import monitor.store.facets as facets_module
    import monitor.web.facets as web_facets

    engine = read_engine(site.settings.database_url)
    ticks = [0.0]
    counts = FacetCounts(engine, max_age=10, clock=lambda: ticks[0])
    everything = parse_filters({})
    assert counts.of(everything).total == len(site.data.by_id)
    first = counts.summary()
    ticks[0] = 5.0
    assert counts.summary() is first  # young enough: the same one
    ticks[0] = 20.0
    counts.summary()  # old: a new one is made in the background
    for _ in range(200):
        if counts.summary() is not first:
            break
        time.sleep(0.01)
    assert counts.summary() is not first
    capped = facets_module.facets_of_rows(
        newest_items(engine, parse_filters({"since": "2000-01-01"}), limit=6, text=None), cap=5)
    assert capped.capped and capped.total == 5
    # a dated selection past the cap: facets of its first items, its total counted apart
    monkeypatch.setattr(web_facets, "CAP", 5)
    dated = counts.of(parse_filters({"since": "2000-01-01"}))
    assert dated.sampled == 5 and sum(dated.lang.values()) == 5
    assert dated.total == len(site.data.by_id) and not dated.capped
    engine.dispose()


def test_previous_and_next_pages_walk_both_ways(site: Site) -> None:
    for order in ("", "sort=score&", "sort=kept&", "q=weather&sort=published&"):
        forward, path = [], f"/items.json?{order}limit=25"
        pages = []
        while path:
            page = site.json(path)
            pages.append([i["id"] for i in page["items"]])
            forward += pages[-1]
            path = page["next"]["json"] if page["next"] else None
        assert len(forward) == len(set(forward)) and len(pages) > 2, order
        back = []
        while page["previous"]:
            page = site.json(page["previous"]["json"])
            back.append([i["id"] for i in page["items"]])
        assert back == pages[-2::-1], order
    ranked = site.json("/items.json?q=weather&limit=25")
    second = site.json(ranked["next"]["json"])
    assert ranked["next"]["json"].endswith("start=25&limit=25")
    assert site.json(second["previous"]["json"])["items"] == ranked["items"]
    html = site.html(f"/items?limit=25&sort=kept&before={site.data.all_ids[24]}")
    assert re.search(r'<a rel="prev" href="/items\?sort=kept&amp;limit=25">', html)


def test_exports_follow_the_current_filter(site: Site) -> None:
    listing = site.json("/items.json?relevant=1&lang=fr")
    expected = sorted(i["id"] for i in listing["items"])
    assert listing["exports"]["csv"] == "/items.csv?relevant=1&lang=fr"
    answer = site.get(listing["exports"]["csv"])
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    records = list(csv.DictReader(io.StringIO(answer.text)))
    assert [int(r["id"]) for r in records] == expected  # oldest first
    lines = site.get(listing["exports"]["jsonl"]).text.splitlines()
    assert [json.loads(line)["id"] for line in lines] == expected
    searched = site.get("/items.jsonl?q=weather&lang=en").text.splitlines()
    assert len(searched) == sum("weather" in r["text"] for r in site.data.by_id.values())
    assert site.get("/items.csv?relevant=maybe").status_code == 400
    header = site.get("/items.csv?q=zzzz-nowhere").text
    assert header.splitlines() == [header.splitlines()[0]] and header.startswith("id,url,")


def test_headings_excerpts_and_chips(site: Site) -> None:
    assert "<h1>Items</h1>" in site.html("/items")
    assert "<h1>Relevant items</h1>" in site.html("/items?relevant=1")
    assert '<h1>Search: <q dir="auto">weather</q></h1>' in site.html("/items?q=weather")
    old = site.data.by_id[site.data.ids["year-old"]]
    listed = next(i for i in site.json("/items.json?limit=500")["items"]
                  if i["id"] == old["id"])
    assert old["text"].startswith(old["title"])  # the page's text repeats its headline
    assert listed["text"] == "Old news about the harbour year-old."
    assert without_title("Title.\n Body", "Title", [[0, 5], [8, 12]]) == ("Body", [[0, 4]])
    assert without_title("Body", "Title", [[0, 4]]) == ("Body", [[0, 4]])
    # a not-relevant item shows no topic chip, even with topics stored
    page = site.html("/items")
    late = page.split(f'id="item-{site.data.ids["undated"]}"')[1].split("</li>")[0]
    assert "not relevant" in late and 'class="topic"' not in late


def test_best_match_first_for_a_search_with_the_other_orders_offered(site: Site) -> None:
    found = site.json("/items.json?q=maroc")
    assert found["sort"] == "match" and "match" in [s["value"] for s in found["sorts"]]
    ranks = [i["rank"] for i in found["items"]]
    assert ranks == sorted(ranks, reverse=True) and len(ranks) > 2
    by_date = site.json("/items.json?q=maroc&sort=published")["items"]
    assert sorted(i["id"] for i in by_date) == sorted(i["id"] for i in found["items"])
    assert [i["published_at"] for i in by_date] == sorted(
        (i["published_at"] for i in by_date), reverse=True)
    assert site.get("/items.json?sort=match").status_code == 400  # no search, no match order


def test_the_keys_script_is_served_and_small(site: Site) -> None:
    script = site.get("/static/keys.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert '"j"' in script.text and len(script.content) < 4000
