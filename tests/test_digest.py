"""`monitor digest`: the day's relevant items grouped by topic, Markdown and HTML, escaped."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

import pytest

from monitor.report.digest import OTHER, build_digest, md_text, render_html, render_markdown
from monitor.rules import load_ruleset
from monitor.settings import load_settings
from monitor.store.engine import create_schema, make_engine
from monitor.store.listings import relevant_items_kept_on
from tests.conftest import Project
from tests.webdata import HOSTILE_TITLE, fill_database


@pytest.fixture
def filled(project: Project):
    settings = load_settings(project.config)
    engine = make_engine(settings.database_url)
    create_schema(engine)
    data = fill_database(engine, load_ruleset(settings.rules_file), filler=5)
    yield engine, data
    engine.dispose()


def digest_of(engine, day):
    return build_digest(relevant_items_kept_on(engine, day), day)


def _day_of(data, key):
    return data.by_id[data.ids[key]]["fetched_at"].date()


def test_digest_groups_the_days_relevant_items_by_topic(filled) -> None:
    engine, data = filled
    day = _day_of(data, "hostile")
    digest = digest_of(engine, day)
    expected = [i for i in data.relevant_ids if data.by_id[i]["fetched_at"].date() == day]
    assert digest.count == len(expected) and digest.count >= 1
    listed = {item["id"] for _, entries in digest.topics for item in entries}
    assert listed == set(expected)
    topics = [topic for topic, _ in digest.topics]
    assert topics == sorted(t for t in topics if t != OTHER) + ([OTHER] if OTHER in topics else [])
    for topic, entries in digest.topics:
        for item in entries:
            assert topic in item["topics"] or (topic == OTHER and not item["topics"])
        scores = [item["score"] for item in entries]
        assert scores == sorted(scores, reverse=True)


def test_markdown_has_links_and_inert_titles(filled) -> None:
    engine, data = filled
    text = render_markdown(digest_of(engine, _day_of(data, "hostile")))
    assert text.startswith(f"# Digest of {_day_of(data, 'hostile').isoformat()}\n")
    assert "](https://news.example.ma/hostile)" in text
    hostile_line = next(line for line in text.splitlines() if "hostile)" in line)
    assert "<script>" not in hostile_line and "\\<script\\>" in hostile_line
    assert re.search(r"^## \w", text, re.M)
    assert md_text("[x](javascript:alert(1))") == "\\[x\\]\\(javascript:alert\\(1\\)\\)"


class Parsed(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags, self.links, self.text = [], [], []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag == "a":
            self.links.append(dict(attrs)["href"])

    def handle_data(self, data) -> None:
        self.text.append(data)


def test_html_is_escaped_and_linked(filled) -> None:
    engine, data = filled
    page = render_html(digest_of(engine, _day_of(data, "hostile")))
    parsed = Parsed()
    parsed.feed(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert "https://news.example.ma/hostile" in parsed.links
    assert HOSTILE_TITLE in "".join(parsed.text)  # shown as text, whole
    assert '<span dir="auto" lang="fr">' in page


def test_an_empty_day_says_so(filled) -> None:
    engine, data = filled
    day = _day_of(data, "hostile") + timedelta(days=30)
    digest = digest_of(engine, day)
    assert digest.count == 0 and digest.topics == ()
    assert "No relevant item was kept this day." in render_markdown(digest)
    assert "No relevant item was kept this day." in render_html(digest)


def test_digest_command(project: Project, filled) -> None:
    _, data = filled
    day = _day_of(data, "arabic").isoformat()
    md = project.cli("digest", "--date", day)
    assert md.stdout.startswith(f"# Digest of {day}")
    assert "المغرب" in md.stdout
    html = project.cli("digest", "--date", day, "--format", "html")
    assert html.stdout.startswith("<!DOCTYPE html>")
    bad = project.cli("digest", "--date", "tomorrow", check=False)
    assert bad.returncode == 2 and "YYYY-MM-DD" in bad.stderr
