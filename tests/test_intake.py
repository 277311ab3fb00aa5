"""feeds.intake: the entries a poll takes (pure): those with a link or some text, the newest
first up to the cap, in the feed's order; the count left for the next polls."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from monitor.feeds.intake import has_content, take_newest
from monitor.feeds.parse import Entry

NOW = datetime(2025, 6, 2, 8, 0, tzinfo=UTC)


def entry(guid: str, *, hours_ago: float | None = 0, link: str | None = "https://x.ma/a",
          title: str = "Titre", summary: str = "") -> Entry:
    published = None if hours_ago is None else NOW - timedelta(hours=hours_ago)
    return Entry(guid=guid, link=link, link_problem=None if link else "no-link", title=title,
                 summary=summary, published=published, author=None)


def test_entries_with_neither_link_nor_text_are_skipped() -> None:
    bare = entry("bare", link=None, title="", summary="  ")
    kept = [entry("link", title=""), entry("title", link=None),
            entry("summary", link=None, title="", summary="Résumé.")]
    assert [has_content(e) for e in [bare, *kept]] == [False, True, True, True]
    intake = take_newest([bare, *kept, bare], 10)
    assert (intake.taken, intake.left, intake.empty) == (tuple(kept), 0, 2)


def test_the_newest_are_taken_in_the_feeds_order_and_the_rest_counted() -> None:
    feed = [entry("old", hours_ago=9), entry("new", hours_ago=1), entry("undated", hours_ago=None),
            entry("newest", hours_ago=0), entry("mid", hours_ago=5)]
    intake = take_newest(feed, 3)
    assert [e.guid for e in intake.taken] == ["new", "newest", "mid"]
    assert (intake.left, intake.empty) == (2, 0)
    # Equal or missing dates: the entries the feed lists first.
    same = [entry(f"u{i}", hours_ago=None) for i in range(5)]
    assert [e.guid for e in take_newest(same, 2).taken] == ["u0", "u1"]
