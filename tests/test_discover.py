"""Feed autodiscovery on real pages (five of tests/fixtures/articles, WordPress, SPIP and other
CMS pages that advertise their feeds, or do not) and on made-up edge cases."""

from __future__ import annotations

from pathlib import Path

import pytest

from monitor.feeds.discover import FeedLink, discover_feeds, suspect_urls

PAGES = Path(__file__).parent / "fixtures" / "articles"


def _found(name: str, page_url: str) -> list[tuple[str, str, str | None, bool]]:
    links = discover_feeds((PAGES / name).read_bytes(), page_url=page_url)
    return [(link.url, link.type, link.title, link.comments) for link in links]


def test_wordpress_article_main_feed_first_comments_feeds_last() -> None:
    page = "https://blog.givewell.org/2018/09/10/september-2018-open-thread/"
    assert _found("aeb-ac3c035520461017.html", page) == [
        ("https://blog.givewell.org/feed/", "rss", "The GiveWell Blog » Feed", False),
        ("https://blog.givewell.org/comments/feed/", "rss",
         "The GiveWell Blog » Comments Feed", True),
        ("https://blog.givewell.org/2018/09/10/september-2018-open-thread/feed/", "rss",
         "The GiveWell Blog » September 2018 open thread Comments Feed", True),
    ]


def test_relative_hrefs_resolve_against_base_href_not_the_page() -> None:
    # the page lives deep under /actus-et-medias/...; <base href="https://france.attac.org/">
    page = "https://france.attac.org/actus-et-medias/dans-les-medias/article/x"
    assert _found("traf-france.attc.org-privatisations.html", page) == [
        ("https://france.attac.org/spip.php?page=backend", "rss", "Syndiquer tout le site", False),
        ("https://france.attac.org/spip.php?page=backend&id_rubrique=31", "rss",
         "Communiqués de presse", False),
    ]


def test_root_relative_href_resolves_against_the_page_url_and_keeps_its_title() -> None:
    page = "http://entermedia.co.kr/news/news_view.html?idx=8576"
    assert _found("aeb-0ec95c7261d122f3.html", page) == [
        ("http://entermedia.co.kr/xml/news_rss.php", "rss", "최신뉴스(Entermedia)", False),
    ]


def test_a_french_comments_feed_is_marked() -> None:
    page = "https://aoc.media/opinion/2019/12/09/pour-le-neoliberalisme-la-retraite-est-un-archaisme/"
    [link] = discover_feeds((PAGES / "traf-aoc.media.archaisme.html").read_bytes(), page_url=page)
    assert link.url == page + "feed/"
    assert link.comments and link.title.endswith("Flux des commentaires")


def test_a_page_without_feed_links_gives_nothing() -> None:
    assert _found("traf-dw.com-elephants.html", "https://www.dw.com/fr/a-6533123") == []


HEAD = b"""<!doctype html><html><head>%s</head><body><p>x</p></body></html>"""


@pytest.mark.parametrize(("links", "expected"), [
    # duplicates (final slash, letter case) are kept once, in first position
    (b'<link rel="alternate" type="application/rss+xml" href="/feed/">'
     b'<link rel="alternate" type="application/atom+xml" href="/atom.xml">'
     b'<link rel="Alternate" type="application/rss+xml" href="https://Site.example/feed">',
     [("https://site.example/feed/", "rss"), ("https://site.example/atom.xml", "atom")]),
    # JSON Feed under both types; type parameters and odd case accepted
    (b'<link rel="alternate" type="application/feed+json" href="feed.json">'
     b'<link rel="alternate" type="Application/JSON; charset=utf-8" href="/j.json">',
     [("https://site.example/blog/feed.json", "json"), ("https://site.example/j.json", "json")]),
    # not feeds: oEmbed, stylesheets, no href, javascript:, rel without alternate
    (b'<link rel="alternate" type="application/json+oembed" href="/oembed">'
     b'<link rel="stylesheet" type="text/css" href="/s.css">'
     b'<link rel="alternate" type="application/rss+xml">'
     b'<link rel="alternate" type="application/rss+xml" href="javascript:alert(1)">'
     b'<link rel="feed" type="application/rss+xml" href="/other">',
     []),
])
def test_link_edge_cases(links: bytes, expected: list[tuple[str, str]]) -> None:
    found = discover_feeds(HEAD % links, page_url="https://site.example/blog/post")
    assert [(link.url, link.type) for link in found] == expected


def test_relative_base_href_and_comments_ranked_last_whatever_the_order() -> None:
    page = (b'<base href="/news/">'
            b'<link rel="alternate" type="application/rss+xml" title="Comments" href="c.xml">'
            b'<link rel="alternate" type="application/rss+xml" title="News" href="n.xml">')
    found = discover_feeds(HEAD % page, page_url="https://site.example/a/b")
    assert found == (
        FeedLink("https://site.example/news/n.xml", "rss", "News", False),
        FeedLink("https://site.example/news/c.xml", "rss", "Comments", True),
    )


def test_empty_and_non_html_bodies_give_nothing() -> None:
    assert discover_feeds(b"", page_url="https://site.example/") == ()
    assert discover_feeds(b"\x00\x01binary", page_url="https://site.example/") == ()


def test_usual_suspects_stay_on_the_site() -> None:
    assert suspect_urls("http://127.0.0.21:8080/some/page?x=1") == (
        "http://127.0.0.21:8080/feed", "http://127.0.0.21:8080/rss",
        "http://127.0.0.21:8080/rss.xml", "http://127.0.0.21:8080/atom.xml",
        "http://127.0.0.21:8080/feed.xml", "http://127.0.0.21:8080/index.xml",
    )
