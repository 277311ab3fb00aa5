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
from tests.conftest import Project

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


@pytest.mark.parametrize("value", ["soon", "-5m", 0, "5 weeks", True, float("nan"),
                                   float("inf"), "99999999999999d", 10**400, "9" * 400, [60]])
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
    ("feeds:\n  - url: https://a.ma/rss\n    name: A\n    lang: french\n", 4, "lang",
     "'french' is not a language code; use two letters such as fr, ar or en"),
    ("feeds:\n  - url: https://a.ma/rss\n    name: A\n    name: B\n", 4, "name", "duplicate key"),
    ("feeds:\n  - url: https://a.ma/rss\n    name: A\n    interval: .nan\n", 4, "interval",
     ".nan is not a duration"),
    ("feeds:\n  - name: A\n    url: \"https://a.ma/rss\\r\\nINFO forged\"\n", 3, "url",
     "'https://a.ma/rss\\r\\nINFO forged' contains the control character '\\r'"),
    ("feeds:\n  - url: \"https://a.ma/\\e[2Jrss\"\n    name: A\n", 2, "url",
     "control character '\\x1b'"),
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
    with pytest.raises(ConfigError, match="unknown key; valid keys here are: alerts, database_url"):
        load_settings(path, environ={})


@pytest.mark.parametrize(("text", "line", "key", "says"), [
    ("schedule:\n  tick: .nan\n", 2, "tick", ".nan is not a duration"),
    ("schedule:\n  lease: .inf\n", 2, "lease", ".inf is not a duration"),
    ("schedule:\n  lease: 99999999999999d\n", 2, "lease", "a duration is at most 365d"),
    ("schedule:\n  tick: " + "9" * 400 + "\n", 2, "tick", "a duration is at most 365d"),
    ("http:\n  deadline: .nan\n", 2, "deadline", ".nan is not a duration"),
    ("http:\n  robots_cache: -.inf\n", 2, "robots_cache", "-.inf is not a duration"),
    ("http:\n  max_feed_bytes: 99999999999999 GiB\n", 2, "max_feed_bytes", "at most 1024 GiB"),
    ("http:\n  max_page_bytes: .nan\n", 2, "max_page_bytes", ".nan is not a size"),
    ("http:\n  per_host_delay: .inf\n", 2, "per_host_delay", "finite"),
    ("schedule:\n  min_interval: 2d\n  max_interval: 1d\n", 3, "max_interval",
     "max_interval (24 h) is shorter than min_interval (2 d)"),
    ("schedule:\n  min_interval: 2d\n", 1, "max_interval", "shorter than min_interval"),
])
def test_non_finite_and_contradictory_settings_are_refused(
        tmp_path: Path, text: str, line: int, key: str, says: str) -> None:
    _write(tmp_path / "feeds.yaml", "feeds: []\n")
    _write(tmp_path / "rules.yaml", "threshold: 1\n")
    path = _write(tmp_path / "monitor.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={})
    assert (caught.value.line, caught.value.key) == (line, key)
    assert says in str(caught.value) and f"{path}, line {line}" in str(caught.value)


def test_a_non_finite_tick_stops_a_command_with_exit_2(tmp_path: Path, capsys) -> None:
    from monitor.cli import main

    _write(tmp_path / "feeds.yaml", "feeds: []\n")
    _write(tmp_path / "rules.yaml", "threshold: 1\n")
    path = _write(tmp_path / "monitor.yaml", "storage_dir: storage\nschedule:\n  tick: .nan\n")
    with pytest.raises(SystemExit) as caught:
        main(["run", "--once", "--config", str(path)])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert f"{path}, line 3, key 'tick': .nan is not a duration" in err
    assert "Traceback" not in err


# What pydantic says in its own words names Python types ("a valid tuple") and its machinery
# ("Value error, "); people editing a YAML file read ours.
PYDANTIC_WORDING = ("Input should", "String should", "Value error", "tuple", "dictionary",
                    "instance of", "unable to")


@pytest.mark.parametrize(("name", "text", "says"), [
    ("feeds.yaml", "feeds: https://a.ma/rss\n", "expected a list, found 'https://a.ma/rss'"),
    ("feeds.yaml", "feeds:\n", "expected a list, found nothing"),
    ("feeds.yaml", "feeds:\n  - [https://a.ma/rss]\n", "expected a mapping of keys, found a list"),
    ("feeds.yaml", "feeds:\n  - {url: 'https://a.ma/rss', name: ''}\n", "must not be empty"),
    ("feeds.yaml", "feeds:\n  - {url: 'https://a.ma/rss', name: A, tags: news}\n",
     "expected a list, found 'news'"),
    ("feeds.yaml", "feeds:\n  - {url: 'https://a.ma/rss', name: A, enabled: maybe}\n",
     "expected true or false, found 'maybe'"),
    ("feeds.yaml", "feeds:\n  - {url: [a], name: A}\n", "expected text, found a list"),
    ("monitor.yaml", "schedule: 3\n", "expected a mapping of keys, found 3"),
    ("monitor.yaml", "schedule:\n  workers: many\n", "expected a whole number, found 'many'"),
    ("monitor.yaml", "schedule:\n  workers: 1.5\n", "expected a whole number, found 1.5"),
    ("monitor.yaml", "schedule:\n  workers: 0\n", "0 is out of range: use a value of at least 1"),
    ("monitor.yaml", "http:\n  max_redirects: 99\n", "use a value of at most 30"),
    ("monitor.yaml", "http:\n  per_host_delay: soon\n", "expected a number, found 'soon'"),
    ("monitor.yaml", "http:\n  per_host_delay: .nan\n",
     "expected a finite number (not .nan or .inf), found .nan"),
    ("monitor.yaml", "log_level: loud\n", "'loud' is not a log level; use debug, info"),
    ("monitor.yaml", "database_url: {a: 1}\n", "expected text, found a mapping"),
])
def test_validation_messages_are_in_our_words(tmp_path: Path, name: str, text: str,
                                              says: str) -> None:
    _write(tmp_path / "feeds.yaml", "feeds: []\n")
    _write(tmp_path / "rules.yaml", "threshold: 1\n")
    path = _write(tmp_path / name, text)
    with pytest.raises(ConfigError) as caught:
        load_feeds(path) if name == "feeds.yaml" else load_settings(path, environ={})
    assert says in str(caught.value)
    assert not [words for words in PYDANTIC_WORDING if words in str(caught.value)]
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


@pytest.mark.parametrize("text", ["", "# the feeds\n", "{}\n"])
def test_a_feeds_file_that_holds_nothing_is_refused(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path / "feeds.yaml", text)
    with pytest.raises(ConfigError, match="holds no `feeds:` list; write `feeds: \\[\\]`"):
        load_feeds(path)
    assert load_feeds(path, empty_ok=True) == ()
    _write(path, text.replace("{}", "") + "feeds: []\n")
    assert load_feeds(path) == ()


def test_a_feeds_file_truncated_while_saved_keeps_the_feeds(tmp_path: Path, caplog) -> None:
    from monitor.worker.daemon import reload_config

    path = _write(tmp_path / "feeds.yaml", "feeds:\n  - {url: 'https://a.ma/rss', name: A}\n")
    watch = WatchedFile(path, load_feeds)
    good = watch.current()
    path.write_bytes(b"")  # an editor truncates the file, then writes it
    with caplog.at_level("ERROR", logger="monitor"):
        assert not reload_config(watch, "feeds file")
    assert watch.value == good
    assert "feeds file not reloaded, keeping the last good version" in caplog.text
    assert "write `feeds: []` if no feed is to be polled" in caplog.text
    _write(path, "feeds: []\n")  # no feed at all, said explicitly
    assert reload_config(watch, "feeds file") and watch.value == ()


def test_an_empty_feeds_file_stops_a_run_with_exit_2(project: Project) -> None:
    feeds = _write(project.root / "config" / "feeds.yaml", "")
    result = project.cli("run", "--once", check=False)
    assert result.returncode == 2
    assert f"{feeds}, line 1: the file holds no `feeds:` list" in result.stderr


def test_a_watched_file_that_never_loaded_has_no_value(tmp_path: Path) -> None:
    watch = WatchedFile(tmp_path / "absent.yaml", load_feeds)
    assert watch.current() is None and isinstance(watch.error, ConfigError)


def test_the_poll_deadline_is_a_duration_by_default_a_few_request_deadlines(
    tmp_path: Path,
) -> None:
    _write(tmp_path / "feeds.yaml", "feeds: []\n")
    _write(tmp_path / "rules.yaml", "threshold: 1\n")
    path = _write(tmp_path / "monitor.yaml", "http:\n  deadline: 30s\n")
    assert load_settings(path, environ={}).poll_deadline == 150
    _write(path, "http:\n  deadline: 30s\nschedule:\n  poll_deadline: 10m\n")
    assert load_settings(path, environ={}).poll_deadline == 600
    _write(path, "schedule:\n  poll_deadline: never\n")
    with pytest.raises(ConfigError, match="line 2, key 'poll_deadline'.*not a duration"):
        load_settings(path, environ={})
