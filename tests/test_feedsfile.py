"""Edits of feeds.yaml: comments, order and untouched bytes kept; nothing written when unsafe."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.feeds.feedsfile import add_feeds, format_duration, listed_feed
from monitor.settings import FeedSpec, load_feeds

ROOT = Path(__file__).resolve().parent.parent
NEW = FeedSpec(url="https://lesiteinfo.com/feed/", name="Le Site: info", lang="fr",
               interval=7200, tags=("general", "morocco"))


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "feeds.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_keeps_every_byte_and_comment_and_gets_an_entry_in_its_style(
        tmp_path: Path) -> None:
    shipped = (ROOT / "config" / "feeds.yaml").read_text(encoding="utf-8")
    path = _file(tmp_path, shipped)
    os.chmod(path, 0o640)
    before = load_feeds(path)

    result = add_feeds(path, [NEW])

    text = path.read_text(encoding="utf-8")
    assert result.added == (NEW,) and result.already_listed == ()
    assert text.startswith(shipped)  # every byte of the old file, comments included
    assert text[len(shipped):] == (
        "  - url: https://lesiteinfo.com/feed/\n"
        "    name: 'Le Site: info'\n"
        "    lang: fr\n"
        "    interval: 2h\n"
        "    tags: [general, morocco]\n")
    assert load_feeds(path) == (*before, NEW)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.yaml"]  # no temporary file left


def test_comments_between_entries_other_keys_and_block_tags_are_kept(tmp_path: Path) -> None:
    head = (
        "# my feeds\n"
        "feeds:\n"
        "- url: https://a.example/feed   # the main one\n"
        "  name: \"A\"\n"
        "  tags:\n"
        "  - x\n"
        "# below: Arabic feeds\n"
        "- url: https://b.example/rss\n"
        "  name: B\n"
        "  enabled: false\n"
    )
    path = _file(tmp_path, head)

    add_feeds(path, [FeedSpec(url="https://c.example/atom", name="C", tags=("y", "z"),
                              enabled=False)])

    assert path.read_text(encoding="utf-8") == head + (
        "- url: https://c.example/atom\n"
        "  name: C\n"
        "  tags:\n"
        "  - y\n"
        "  - z\n"
        "  enabled: false\n")


@pytest.mark.parametrize("text", ["", "# nothing yet\n", "# nothing yet\nfeeds: []\n"])
def test_an_empty_file_gets_a_block_list(tmp_path: Path, text: str) -> None:
    path = _file(tmp_path, text)
    add_feeds(path, [FeedSpec(url="https://a.example/feed", name="A")])
    written = path.read_text(encoding="utf-8")
    assert written.endswith("feeds:\n  - url: https://a.example/feed\n    name: A\n")
    assert written.startswith(text.split("feeds")[0])


def test_listed_urls_are_skipped_like_load_feeds_compares_them(tmp_path: Path) -> None:
    text = "feeds:\n  - url: https://a.example/Feed/\n    name: A\n"
    path = _file(tmp_path, text)
    same = FeedSpec(url="https://A.example/feed", name="again")
    twice = FeedSpec(url="https://b.example/rss", name="B")

    result = add_feeds(path, [same, twice, twice.model_copy(update={"name": "B2"})])

    assert [f.name for f in result.added] == ["B"]
    assert [f.name for f in result.already_listed] == ["again", "B2"]
    assert listed_feed(path, "https://a.example/feed").name == "A"
    assert listed_feed(path, "https://c.example/feed") is None
    assert add_feeds(path, [same]).added == ()  # nothing new: the file is not rewritten


@pytest.mark.parametrize(("text", "message", "line"), [
    ("feeds:\n  - url: https://a.example/feed\n    name: [A\n", "YAML syntax error", 4),
    ("- just\n- a list\n", "expected a mapping of keys at the top level", 1),
    ("feeds:\n  - url: https://a.example/feed\n", "this required key is missing", 2),
    ("feeds: https://a.example/feed\n", "expected a list, found 'https://a.example/feed'", 1),
])
def test_a_file_that_cannot_be_edited_safely_is_left_untouched(
        tmp_path: Path, text: str, message: str, line: int) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        add_feeds(path, [NEW])
    assert message in str(caught.value) and caught.value.line == line
    assert caught.value.path == str(path)
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through permissions")
def test_a_read_only_file_is_refused(tmp_path: Path) -> None:
    text = "feeds: []\n"
    path = _file(tmp_path, text)
    os.chmod(path, 0o444)
    with pytest.raises(ConfigError, match="no write permission"):
        add_feeds(path, [NEW])
    assert path.read_text(encoding="utf-8") == text


def test_an_edit_that_would_make_the_file_invalid_is_not_written(tmp_path: Path) -> None:
    text = "feeds:\n  - url: https://a.example/feed\n    name: A\n"
    path = _file(tmp_path, text)
    unchecked = FeedSpec.model_construct(url="https://b.example/rss", name="", tags=(),
                                         lang=None, interval=None, enabled=True)
    with pytest.raises(ConfigError) as caught:
        add_feeds(path, [unchecked])
    message = str(caught.value)
    assert message.startswith(f"{path}: the edit would make the file invalid")
    assert f"{path}, line 5, key 'name'" in message  # the real file named, not the temporary
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in tmp_path.iterdir()] == ["feeds.yaml"]


@pytest.mark.parametrize(("seconds", "text"), [
    (7200, "2h"), (900, "15m"), (86400, "1d"), (90, "90s"), (5400, "90m"), (0.5, "0.5s")])
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
