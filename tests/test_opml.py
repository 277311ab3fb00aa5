"""OPML reading (reader-shaped exports, odd attributes, hostile files) and writing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.feeds.opml import read_opml, write_opml
from monitor.settings import FeedSpec

OPML = Path(__file__).parent / "fixtures" / "opml"


def _read(name: str):
    return read_opml((OPML / name).read_bytes(), source=name)


def test_feedly_export_folders_become_tags_and_links_are_problems() -> None:
    outlines = _read("feedly-style.opml")
    assert outlines.title == "Reader subscriptions in feedly Cloud"
    assert [(f.url, f.title, f.tags, f.line) for f in outlines.feeds] == [
        ("https://fr.hespress.com/feed", "Hespress FR", ("Maroc",), 9),
        ("https://le360.ma/rss", "Le360", ("Maroc",), 10),
        ("https://telquel.ma/feed", "TelQuel", ("Maroc",), 11),
        ("https://medias24.com/feed/", "Médias24", ("Économie",), 14),
        ("https://le360.ma/rss", "Le360", ("Économie",), 15),  # the duplicate is reported as is
        ("https://www.moroccoworldnews.com/feed/", "Morocco World News", (), 20),
    ]
    assert [(p.line, p.problem) for p in outlines.problems] == [
        (18, "a link without xmlUrl (not a feed)")]


def test_nested_folders_attribute_case_language_and_category() -> None:
    outlines = _read("miniflux-style.opml")
    assert [(f.url, f.title, f.tags, f.lang) for f in outlines.feeds] == [
        ("https://www.yabiladi.com/rss/news.xml", "Yabiladi", ("News", "Morocco"), "fr"),
        # category "/general,/morocco": "morocco" is the folder "Morocco" already
        ("https://www.hespress.com/feed", "Hespress (arabe)", ("News", "Morocco", "general"),
         "ar"),
        ("gopher://example.ma/news", "Gopher news", ("News",), None),  # refused later, by line
        ("https://ledesk.ma/feed/", "Le Desk", (), None),  # XMLURL, type="atom"
    ]
    assert [(p.line, p.problem) for p in outlines.problems] == [
        (16, "an outline without xmlUrl")]


def test_entities_are_not_resolved() -> None:
    outlines = _read("entities.opml")
    assert outlines.title is None  # &secret; (file:///etc/passwd) stays an unresolved reference
    assert [(f.url, f.title) for f in outlines.feeds] == [
        ("https://le360.ma/rss", "Le360"), ("https://ledesk.ma/feed/", "Le Desk")]


@pytest.mark.parametrize(("content", "message", "line"), [
    ((OPML / "not-opml.xml").read_bytes(), "the root element is <rss>, not <opml>", 2),
    (b"<html><body><p>hello</p></body></html>", "the root element is <html>", 1),
    (b"", "XML syntax error", 1),
    (b'<?xml version="1.0"?>\n<opml version="2.0">\n<body>\n<outline text="x">\n</body>',
     "XML syntax error", 5),
    (b'<opml version="2.0"><head/></opml>', "<opml> has no <body>", 1),
])
def test_not_opml_is_a_config_error_with_file_and_line(content: bytes, message: str,
                                                       line: int) -> None:
    with pytest.raises(ConfigError) as caught:
        read_opml(content, source="subs.opml")
    assert message in str(caught.value)
    assert caught.value.path == "subs.opml" and caught.value.line == line


def test_written_opml_reads_back_with_every_setting() -> None:
    feeds = [
        FeedSpec(url="https://fr.hespress.com/feed", name="Hespress FR", lang="fr",
                 tags=("general", "morocco")),
        FeedSpec(url="https://www.hespress.com/feed", name="هسبريس & <co>", lang="ar",
                 tags=("general",), interval="2h"),
        FeedSpec(url="https://ledesk.ma/feed/", name="Le Desk", enabled=False, interval=90),
        FeedSpec(url="https://le360.ma/rss", name="Le360", tags=("general",)),
    ]
    document = write_opml(feeds, title="monitor feeds",
                          created=datetime(2025, 6, 2, 8, 0, tzinfo=UTC))
    assert document.startswith(b"<?xml version='1.0' encoding='UTF-8'?>\n<opml")
    assert b"<dateCreated>Mon, 02 Jun 2025 08:00:00 +0000</dateCreated>" in document
    outlines = read_opml(document, source="export")
    assert outlines.title == "monitor feeds" and outlines.problems == ()
    read_back = [FeedSpec(url=f.url, name=f.title, lang=f.lang, tags=f.tags, enabled=f.enabled,
                          interval=f.interval) for f in outlines.feeds]
    assert read_back == feeds
    # the order is kept: a folder "general" for the two Hespress feeds, Le Desk at the top
    # level, then a second folder "general" for Le360
    assert document.count(b'<outline text="general" title="general">') == 2
