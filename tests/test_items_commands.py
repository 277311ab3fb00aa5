"""items list, items show and items search through the real command line, over the inspector
tests' stored database (tests/webdata.py) with old news kept last and a story brought by two
feeds: the publication order by default, the filters, the header and the count of the rest; the
rules that fired (the others with --all), every source and the near-duplicates, in text and
JSON; the query syntax in --help, no match said, marks that are not quotation marks."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import update

from monitor.store.engine import make_engine
from monitor.store.schema import item_sources, items
from tests.commandline import run_in_process
from tests.webdata import NOW, make_site

OLD_NEWS = NOW - timedelta(days=800)


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """(run the command line, the filled data): the old news is the hostile item, published
    800 days ago though kept last; the seed story was brought by both feeds."""
    folder = tmp_path_factory.mktemp("items")
    settings, data = make_site(folder, f"sqlite:///{folder / 'monitor.db'}")
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(update(items).where(items.c.id == data.ids["hostile"])
                     .values(published=OLD_NEWS))
        for feed, guid, hours in (("Le Site", "seed", 48), ("الموقع العربي", "seed-ar", 45)):
            conn.execute(item_sources.insert().values(
                item_id=data.ids["seed"], feed_id=data.feed_ids[feed], guid=guid,
                url=f"https://news.example.ma/{guid}", seen_at=NOW - timedelta(hours=hours)))
    engine.dispose()

    def cli(*args: str, check: bool = True):
        done = run_in_process([*args, "--config", str(settings.config_path)], cwd=folder)
        assert not check or done.returncode == 0, done.stderr
        return done

    return cli, data


def _json(done) -> list[dict]:
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_list_is_newest_published_first_with_a_header_and_the_rest_counted(stored) -> None:
    cli, data = stored
    total = len(data.all_ids)
    done = cli("items", "list", "--limit", "3")
    header, *rows = done.stdout.splitlines()
    assert header.split() == ["ID", "R", "SCORE", "PUBLISHED", "FEED", "TITLE"]
    assert [int(row.split()[0]) for row in rows] == [data.ids["arabic"], data.ids["copy"],
                                                     data.ids["seed"]]
    assert (NOW - timedelta(hours=7)).date().isoformat() in rows[0]
    assert done.stderr.startswith(f"3 of {total} items, newest published first; "
                                  f"{total - 3} more (--limit N")
    listed = _json(cli("items", "list", "--json", "--limit", "0"))
    assert len(listed) == total and listed[-1]["id"] == data.ids["hostile"]  # old news last
    assert listed[-1]["published"] == OLD_NEWS.isoformat()
    kept = _json(cli("items", "list", "--json", "--sort", "kept", "--limit", "1"))
    assert [item["id"] for item in kept] == [data.ids["hostile"]]
    best = _json(cli("items", "list", "--json", "--sort", "score", "--limit", "5"))
    assert [item["score"] for item in best] == sorted((i["score"] for i in best), reverse=True)
    assert "more" not in cli("items", "list", "--limit", "0").stderr


def test_list_filters(stored) -> None:
    cli, data = stored

    def ids(*args: str) -> list[int]:
        return [item["id"] for item in _json(cli("items", "list", "--json", "--limit", "0",
                                                 *args))]

    old_day = OLD_NEWS.date().isoformat()
    assert ids("--until", old_day) == [data.ids["hostile"]]
    assert ids("--since", old_day, "--until", old_day) == [data.ids["hostile"]]
    assert data.ids["hostile"] not in ids("--since", "30d")
    assert ids("--since", "1d", "--lang", "ar") == [data.ids["arabic"]]
    arabic_feed = [data.ids["arabic"], data.ids["copy"]]
    assert ids("--feed", "الموقع العربي") == arabic_feed
    assert ids("--feed", str(data.feed_ids["الموقع العربي"])) == arabic_feed
    assert ids("--feed", "https://ar.example.ma/rss") == arabic_feed
    assert set(ids("--relevant", "--topic", "cyber")) <= set(data.relevant_ids)
    assert ids("--relevant", "--topic", "cyber")
    for args, message in ((("--feed", "Nowhere"), "names no stored feed"),
                          (("--since", "yesterday"), "is not a day"),
                          (("--since", "2025-02-02", "--until", "2025-02-01"), "is before")):
        refused = cli("items", "list", *args, check=False)
        assert refused.returncode == 2 and message in refused.stderr


def test_show_gives_the_rules_that_fired_every_source_and_the_copies(stored) -> None:
    cli, data = stored
    seed = data.ids["seed"]
    shown = cli("items", "show", str(seed)).stdout
    why = shown[shown.index("why"):shown.index("matches (")]
    assert "+" in why and "rules did not fire (--all shows them)" in why
    assert "\n   0  " not in why
    assert "\n   0  " in cli("items", "show", str(seed), "--all").stdout
    sources = shown[shown.index("sources (2):"):shown.index("near-duplicates")]
    assert "Le Site" in sources and "الموقع العربي" in sources and "seed-ar" in sources
    copies = shown[shown.index("near-duplicates (1):"):]
    assert f"{data.ids['copy']:>6} same text" in copies
    # a matched word is marked unlike the French quotation marks of the text around it
    assert "**Maroc**(morocco)" in shown and "«Maroc»" not in shown and "« Le " in shown

    [item] = _json(cli("items", "show", str(seed), "--json"))
    assert item["id"] == seed and item["explanation"]["relevant"] is True
    assert item["explanation"]["rules"] and all(r["fired"] for r in item["explanation"]["rules"])
    [every] = _json(cli("items", "show", str(seed), "--json", "--all"))
    assert len(every["explanation"]["rules"]) > len(item["explanation"]["rules"])
    assert [s["guid"] for s in item["sources"]] == ["seed", "seed-ar"]
    assert [(c["id"], c["relation"]) for c in item["near_duplicates"]] == [
        (data.ids["copy"], "same text")]


def test_search_says_how_queries_read_and_when_nothing_matches(stored) -> None:
    cli, data = stored
    helped = cli("items", "search", "--help").stdout
    for example in ('"loi 09-08"', "dgssi OR cndp", "maroc NOT sport", "cyber*", "-sport"):
        assert example in helped
    found = _json(cli("items", "search", "--json", "cyber*", "NOT", "DGSSI"))
    assert {item["id"] for item in found} == {data.ids["seed"], data.ids["copy"]}
    assert all("**" in item["snippet"] and "«" not in item["snippet"] for item in found)
    newest = _json(cli("items", "search", "--json", "--sort", "published", "maroc"))
    published = [item["published"] for item in newest]
    assert published == sorted(published, reverse=True) and newest[0]["rank"] is None
    none = cli("items", "search", "tombouctou")
    assert none.stdout == "" and "no item matches tombouctou" in none.stderr
