"""Settings and feeds files: valid ones load, bad ones exit 2 naming file, line and key; edited
files are read again when they change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from monitor.errors import ConfigError
from monitor.settings import (
    WatchedFile,
    describe_duration,
    load_feeds,
    load_settings,
    parse_duration,
    parse_size,
)

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_config_loads() -> None:
    settings = load_settings(ROOT / "config" / "monitor.yaml", environ={})
    assert settings.database_url == f"sqlite:///{ROOT / 'storage' / 'monitor.db'}"
    assert settings.corpus_dir == ROOT / "storage" / "corpus"
    assert settings.http.allow_private_networks is False
    assert settings.http.per_host_connections == 2 and settings.http.per_host_delay == 1.0
    assert settings.schedule.default_interval == 1800
    assert settings.http.max_entries == 300
    feeds = load_feeds(settings.feeds_file)
    assert len(feeds) >= 10
    assert {f.lang for f in feeds} == {"fr", "ar", "en"}
    assert all(f.name and f.tags for f in feeds)


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        "MONITOR_DATABASE_URL": "sqlite:///" + str(tmp_path / "x.db"),
        "MONITOR_STORAGE_DIR": str(tmp_path / "store"),
    }
    settings = load_settings(ROOT / "config" / "monitor.yaml", environ=env)
    assert settings.database_url == env["MONITOR_DATABASE_URL"]
    assert settings.corpus_dir == tmp_path / "store" / "corpus"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(90, 90), ("45s", 45), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5h", 5400)],
)
def test_durations(value, seconds) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["soon", "-5m", 0, "5 weeks", True])
def test_bad_durations(value) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


def test_sizes() -> None:
    assert parse_size("10 MiB") == 10 * 2**20
    assert parse_size("512 KB") == 512_000
    with pytest.raises(ValueError):
        parse_size("big")


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


BAD_FEEDS = [
    ("feeds:\n  - url: https://a.ma/rss\n    name: A\n   bad: indent\n", 4, None, "YAML syntax"),
    (
        "feeds:\n  - url: https://a.ma/rss\n    name: A\n    colour: blue\n",
        4,
        "colour",
        "valid keys here are: enabled, interval, lang, name, tags, url",
    ),
    (
        "feeds:\n  - url: https://a.ma/rss\n    name: A\n  - url: https://a.ma/rss\n    name: B\n",
        4,
        "url",
        "duplicate feed URL",
    ),
    (  # the same feed up to a final slash and letter case (settings.feed_url_key)
        "feeds:\n  - url: https://a.ma/rss\n    name: A\n  - url: HTTPS://A.ma/RSS/\n    name: B\n",
        4,
        "url",
        "duplicate feed URL",
    ),
    (
        "feeds:\n  - url: https://a.ma/rss\n    name: A\n    interval: often\n",
        4,
        "interval",
        "'15m'",
    ),
    ("feeds:\n  - url: ftp://a.ma/rss\n    name: A\n", 2, "url", "not an http(s) URL"),
    ("feeds:\n  - name: A\n", 2, "url", "required key is missing"),
    ("feeds:\n  - url: https://a.ma/rss\n    name: A\n    lang: french\n", 4, "lang", "pattern"),
    ("feeds:\n  - url: https://a.ma/rss\n    name: A\n    name: B\n", 4, "name", "duplicate key"),
]


@pytest.mark.parametrize(("text", "line", "key", "says"), BAD_FEEDS)
def test_bad_feeds_file_names_file_line_and_key(tmp_path: Path, text, line, key, says) -> None:
    path = _write(tmp_path / "feeds.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_feeds(path)
    error = caught.value
    assert error.path == str(path)
    assert error.line == line
    assert error.key == key
    assert says in str(error)
    assert f"{path}, line {line}" in str(error)


def test_bad_settings(tmp_path: Path) -> None:
    _write(tmp_path / "feeds.yaml", "feeds: []\n")
    _write(tmp_path / "rules.yaml", "threshold: 1\n")
    path = _write(tmp_path / "monitor.yaml", "http:\n  per_host_delay: -1\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.line == 2 and caught.value.key == "per_host_delay"
    _write(path, "schedule:\n  tick: whenever\n")
    with pytest.raises(ConfigError, match="line 2, key 'tick'.*not a duration"):
        load_settings(path, environ={})
    _write(path, "rules_file: missing.yaml\n")
    with pytest.raises(ConfigError, match="line 1, key 'rules_file'.*not found"):
        load_settings(path, environ={})
    _write(path, "htpp: {}\n")
    with pytest.raises(ConfigError, match="unknown key; valid keys here are: database_url"):
        load_settings(path, environ={})


@pytest.mark.parametrize("value", ["0", "-5", "true", "2.5", "'300'", "1000000"])
def test_entries_per_poll_must_be_a_sensible_whole_number(tmp_path: Path, value: str) -> None:
    _write(tmp_path / "feeds.yaml", "feeds: []\n")
    _write(tmp_path / "rules.yaml", "threshold: 1\n")
    path = _write(tmp_path / "monitor.yaml", f"http:\n  max_entries: {value}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert caught.value.line == 2 and caught.value.key == "max_entries"
    _write(path, "http:\n  max_entries: 50\n")
    assert load_settings(path, environ={}).http.max_entries == 50


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.yaml", environ={})


def test_durations_are_described_as_people_read_them() -> None:
    assert [describe_duration(s) for s in (45, 300, 5400, 7200, 86400, 129600, 604800)] == [
        "45 s", "5 min", "90 min", "2 h", "24 h", "36 h", "7 d"]


def _save_as_before(path: Path, text: str, *, by_rename: bool) -> None:
    """Save `text` over `path` keeping its modification time, as an edit within one tick of a
    coarse file system clock does; by rename (a new inode, as editors save) or in place."""
    before = path.stat()
    target = path.with_name(path.name + ".new") if by_rename else path
    target.write_text(text, encoding="utf-8")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    if by_rename:
        os.replace(target, path)
    assert path.stat().st_mtime_ns == before.st_mtime_ns


def test_a_watched_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - {url: 'https://a.ma/rss', name: A}\n", encoding="utf-8")
    watch = WatchedFile(path, load_feeds)
    assert watch.value is None and watch.refresh() and watch.error is None
    assert [f.name for f in watch.value] == ["A"]
    assert not watch.refresh()  # unchanged: not read again
    # Same time and same size, saved by rename: the inode tells the edit apart.
    _save_as_before(path, path.read_text().replace("name: A", "name: B"), by_rename=True)
    assert watch.refresh() and [f.name for f in watch.value] == ["B"]
    # Same time, another size, saved in place.
    _save_as_before(path, path.read_text().replace("name: B", "name: BB"), by_rename=False)
    assert [f.name for f in watch.current()] == ["BB"]


def test_a_watched_file_keeps_the_last_good_contents(tmp_path: Path) -> None:
    path = tmp_path / "feeds.yaml"
    path.write_text("feeds:\n  - {url: 'https://a.ma/rss', name: A}\n", encoding="utf-8")
    watch = WatchedFile(path, load_feeds)
    good = watch.current()
    path.write_text("feeds:\n  - {url: 'ftp://a.ma/rss', name: A}\n", encoding="utf-8")
    assert watch.refresh() and watch.value == good
    assert isinstance(watch.error, ConfigError) and "line 2" in str(watch.error)
    assert not watch.refresh() and watch.error is not None  # still refused until edited again
    path.unlink()
    assert watch.refresh() and watch.value == good and "file not found" in str(watch.error)
    path.write_text("feeds: []\n", encoding="utf-8")
    assert watch.current() == () and watch.error is None


def test_a_watched_file_that_never_loaded_has_no_value(tmp_path: Path) -> None:
    watch = WatchedFile(tmp_path / "absent.yaml", load_feeds)
    assert watch.current() is None and isinstance(watch.error, ConfigError)
