"""The daemon: polls on schedule, picks up feeds.yaml edits, survives a bad edit, stops cleanly."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import RSS, build_bulk_site, build_sites, large_feed


def _wait_for(path: Path, text: str, proc: subprocess.Popen, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = path.read_text(encoding="utf-8", errors="replace")
        if text in log:
            return log
        if proc.poll() is not None:
            raise AssertionError(f"daemon exited {proc.returncode} before {text!r}:\n{log}")
        time.sleep(0.1)
    raise AssertionError(f"{text!r} not logged within {timeout}s:\n{path.read_text()}")


@pytest.mark.slow
def test_daemon_reloads_feeds_and_stops_on_sigterm(project: Project, backend: str) -> None:
    sites = build_sites()
    news, real = sites.feeds()[:2]
    project.write_feeds([news])
    project.write_settings(schedule={"tick": "0.2s"})  # edits of feeds.yaml seen sooner
    log_path = project.root / "daemon.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(project.config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=project.root,
        )
    try:
        _wait_for(log_path, "poll feed='Le Site' status=ok", proc)
        # run initialised the database itself and imported the seeds
        assert len(project.cli("items", "list", "--json").stdout.splitlines()) >= 5

        project.write_feeds([news, real])
        _wait_for(log_path, "poll feed='Real capture' status=ok", proc)

        (project.root / "config" / "feeds.yaml").write_text("feeds:\n  - url: [oops\n")
        text = _wait_for(log_path, "feeds file not reloaded, keeping the last good version", proc)
        assert "feeds.yaml, line" in text

        # An editor truncating the file while it saves: not "no feeds", the last good kept.
        (project.root / "config" / "feeds.yaml").write_bytes(b"")
        _wait_for(log_path, "holds no `feeds:` list", proc)

        project.write_feeds([news, {**real, "enabled": False}])
        _wait_for(log_path, "feeds updated: 0 added, 0 removed, 1 changed", proc)
        health = {f["name"]: f for f in map(json.loads, project.cli(
            "feeds", "list", "--json").stdout.splitlines())}
        assert health["Real capture"]["enabled"] is False
        assert health["Le Site"]["status"] == "ok"

        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        assert "monitor stopped" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
        sites.close()
    polls = log_path.read_text().count("poll feed=")
    assert polls == 2  # each feed once: min_interval keeps them from being polled again


@pytest.mark.slow
def test_sigint_mid_poll_stops_within_seconds_and_loses_nothing(
    project: Project, backend: str
) -> None:
    site = build_bulk_site("127.0.0.6", 20, page_delay=0.4)
    project.write_feeds([{"url": site.feed_url, "name": "Slow", "lang": "fr"}])
    log_path = project.root / "daemon.log"
    try:
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(project.config)],
                stdout=log, stderr=subprocess.STDOUT, cwd=project.root,
            )
        deadline = time.monotonic() + 30
        while len(site.server.requests("/news/2.html")) == 0:  # mid-poll
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=15) == 0
        assert time.monotonic() - started < 5
        text = log_path.read_text()
        assert "status=interrupted" in text and "monitor stopped" in text

        # The rest of the feed, fetched more at once than the daemon did (its pages are slow).
        project.write_settings(http={"per_host_connections": 8})
        project.cli("run", "--once")
        urls = [json.loads(line)["url"] for line in
                project.cli("items", "list", "--json").stdout.splitlines()]
        assert sorted(u for u in urls if u) == sorted(site.links)
    finally:
        site.server.close()


def test_log_lines_stay_one_line_whatever_they_quote() -> None:
    """A CR/LF (or an escape sequence) in a feed URL, a name or a message cannot split a log
    line or forge the next one; a traceback still follows on lines of its own."""
    script = (
        "import logging\n"
        "from monitor.cli.logsetup import setup_logging\n"
        "setup_logging('info')\n"
        "log = logging.getLogger('monitor.poll')\n"
        "log.warning('feed %s moved: %s', 'Le\\u2028Site', "
        "'https://a.ma/rss\\r\\n2030-01-01 INFO forged\\x1b[2J')\n"
        "try:\n"
        "    raise ValueError('boom')\n"
        "except ValueError:\n"
        "    log.exception('internal error while polling %s', 'https://a.ma/\\nx')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, check=True)
    lines = done.stderr.splitlines()
    assert lines[0].endswith(
        "WARNING monitor.poll: feed Le\\u2028Site moved: "
        "https://a.ma/rss\\r\\n2030-01-01 INFO forged\\x1b[2J")
    assert lines[1].endswith("ERROR monitor.poll: internal error while polling https://a.ma/\\nx")
    assert lines[2] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: boom"


def _stop_with_sigterm(proc: subprocess.Popen) -> float:
    """SIGTERM to a daemon: the seconds it took to exit, with status 0."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=15) == 0
    return time.monotonic() - started


@pytest.mark.slow
def test_sigterm_in_a_poll_of_a_large_feed_stops_within_seconds_keeping_its_batches(
    project: Project,
) -> None:
    # 5,000 items, 3,500 of them bare <guid>s, all taken in one poll: it lasts a few seconds.
    big = large_feed(5000, empty=lambda i: i % 10 >= 3)
    project.write_settings(http={"max_entries": 5000})
    log_path = project.root / "daemon.log"
    with LoopbackServer("127.0.0.64") as site:
        site.route("/feed.xml", Reply(big.body, content_type=RSS, conditional=True))
        project.write_feeds([{"url": site.url("/feed.xml"), "name": "Fil", "lang": "fr"}])
        proc = _start_daemon(project, log_path)
        try:
            deadline = time.monotonic() + 30
            while _stored_yet(project) < 1:  # a first batch is in
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            stopped_in = _stop_with_sigterm(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
        text = log_path.read_text()
        assert stopped_in < 3, text
        assert "status=interrupted" in text and "monitor stopped" in text
        kept = _count(project, _FEED_ITEMS)
        assert 0 < kept < len(big.newest_first)

        project.cli("run", "--once")  # the rest, none twice, no bare <guid>
    guids = [row[0] for row in _rows(project, "SELECT guid FROM items WHERE feed_id IS NOT NULL")]
    assert sorted(guids) == sorted(big.newest_first)
    assert _count(project, "SELECT count(*) FROM items WHERE title = '' OR text = ''") == 0


@pytest.mark.slow
def test_sigterm_while_a_large_feed_is_parsed_stops_within_seconds(project: Project) -> None:
    big = large_feed(25000)  # 4.5 MB, under the feed size cap: seconds of parsing
    log_path = project.root / "daemon.log"
    with LoopbackServer("127.0.0.65") as site:
        site.route("/feed.xml", Reply(big.body, content_type=RSS))
        project.write_feeds([{"url": site.url("/feed.xml"), "name": "Fil", "lang": "fr"}])
        proc = _start_daemon(project, log_path)
        try:
            deadline = time.monotonic() + 30
            while not site.requests("/feed.xml"):
                assert time.monotonic() < deadline and proc.poll() is None
                time.sleep(0.05)
            time.sleep(0.5)  # the feed is being parsed
            stopped_in = _stop_with_sigterm(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
    text = log_path.read_text()
    assert stopped_in < 2, text  # parsing it takes longer: the stop does not wait for it
    assert "status=interrupted" in text and "monitor stopped" in text
    assert _count(project, _FEED_ITEMS) == 0


def _start_daemon(project: Project, log_path: Path) -> subprocess.Popen:
    with log_path.open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "monitor", "run", "--config", str(project.config)],
            stdout=log, stderr=subprocess.STDOUT, cwd=project.root,
        )


_FEED_ITEMS = "SELECT count(*) FROM items WHERE feed_id IS NOT NULL"  # not the seeds


def _rows(project: Project, query: str) -> list:
    db = sqlite3.connect(f"file:{project.database}?mode=ro", uri=True)
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def _stored_yet(project: Project) -> int:
    """Items stored so far; 0 while the daemon is still making the database."""
    try:
        return _count(project, _FEED_ITEMS)
    except sqlite3.OperationalError:
        return 0


def _count(project: Project, query: str) -> int:
    return _rows(project, query)[0][0]
