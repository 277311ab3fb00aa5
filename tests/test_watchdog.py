"""The poll watchdog, on a stage made to hang for real: a loopback site that never answers a
page, while the request deadline is far longer than the poll deadline. `run --once` (in its own
process, within a time limit) ends the stuck poll at its deadline, records it as failed with
reason ``poll-deadline`` and the stage it was stuck in, stores nothing of it (the other feed's
items are stored), and the next run, the page answering again, stores every entry once. In the
daemon the stuck poll's slot is freed (one slot only: the other feed goes on being polled) and
its feed's lease released. `Stages` names where a poll is."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from monitor.errors import PollDeadline
from monitor.worker.watchdog import Stages, within_deadline
from tests.conftest import Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import HTML, RSS, real_english_pages, rss
from tests.test_daemon import _wait_for

NEVER = 600  # seconds a hung page takes to answer: longer than any test


def _stuck_and_fine(stuck: LoopbackServer, fine: LoopbackServer, project: Project) -> bytes:
    """Two feeds: "Stuck" (a summary-only entry and a page that never answers), "Fine" (one
    page). Returns the stuck page's real bytes."""
    page, other = (path.read_bytes() for path in real_english_pages(2))
    stuck.route("/hung", Reply(page, content_type=HTML, delay=NEVER))
    stuck.route("/feed.xml", Reply(rss([
        {"title": "Brève", "guid": "brief", "summary": "Une brève sans lien."},
        {"title": "Bloquée", "guid": "hung", "link": stuck.url("/hung")},
    ], link=stuck.base_url), content_type=RSS, conditional=True))
    fine.route("/page", Reply(other, content_type=HTML))
    fine.route("/feed.xml", Reply(rss([{"title": "Page", "guid": "page", "link": fine.url(
        "/page")}], link=fine.base_url), content_type=RSS, conditional=True))
    project.write_feeds([{"url": stuck.url("/feed.xml"), "name": "Stuck"},
                         {"url": fine.url("/feed.xml"), "name": "Fine", "interval": "1s"}])
    return page


def _rows(project: Project, query: str) -> list:
    engine = sa.create_engine(project.database_url or f"sqlite:///{project.database}")
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(query)).all()
    finally:
        engine.dispose()


@pytest.mark.slow
def test_run_once_ends_a_hung_poll_at_its_deadline_and_the_next_run_stores_it(
    project: Project, backend: str
) -> None:
    with LoopbackServer("127.0.0.73") as stuck, LoopbackServer("127.0.0.74") as fine:
        page = _stuck_and_fine(stuck, fine, project)
        project.write_settings(http={"deadline": "10m", "read_timeout": "10m"},
                               schedule={"poll_deadline": "2s"})
        started = time.monotonic()
        run = project.cli("run", "--once", own_process=True, timeout=30)
        took = time.monotonic() - started
        # the stuck poll's other entry was stored in a batch before the deadline
        assert "1 ok, 1 failed; 2 new items" in run.stdout, run.stdout + run.stderr
        assert len(stuck.requests("/hung")) == 1
        assert "poll feed='Stuck' status=poll-deadline" in run.stderr
        assert "ran past schedule.poll_deadline (2 s) and was ended, stuck in fetch page" \
            in run.stderr
        assert took < 15
        polls = _rows(project, "SELECT f.name, p.status, p.error_reason FROM polls p "
                               "JOIN feeds f ON f.id = p.feed_id ORDER BY f.name")
        assert [tuple(row) for row in polls] == [("Fine", "ok", None),
                                                 ("Stuck", "error", "poll-deadline")]
        # Of the stuck poll only what its batches stored is seen (not the hung page's entry);
        # its feed is free for the next poll.
        assert [row.guid for row in _rows(project, "SELECT s.guid FROM item_sources s JOIN feeds f "
                "ON f.id = s.feed_id WHERE f.name = 'Stuck'")] == ["brief"]
        assert _rows(project, "SELECT lease_owner, etag FROM feeds WHERE name = 'Stuck'"
                     ) == [(None, None)]

        stuck.route("/hung", Reply(page, content_type=HTML))
        again = project.cli("run", "--once", own_process=True, timeout=30)
        assert "poll feed='Stuck' status=ok" in again.stderr and "1 new items" in again.stdout
    guids = _rows(project, "SELECT s.guid FROM item_sources s JOIN feeds f "
                           "ON f.id = s.feed_id WHERE f.name = 'Stuck' ORDER BY s.guid")
    assert [row.guid for row in guids] == ["brief", "hung"]


@pytest.mark.slow
def test_the_daemon_frees_a_hung_polls_slot_and_the_other_feeds_go_on(
    project: Project,
) -> None:
    with LoopbackServer("127.0.0.75") as stuck, LoopbackServer("127.0.0.76") as fine:
        _stuck_and_fine(stuck, fine, project)
        # One poll slot: while the stuck poll holds it, nothing else is polled.
        project.write_settings(http={"deadline": "10m", "read_timeout": "10m"},
                               schedule={"poll_deadline": "2s", "workers": 1, "tick": "0.2s",
                                         "min_interval": "1s"})
        log_path = project.root / "daemon.log"
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--config", str(project.config)],
                stdout=log, stderr=subprocess.STDOUT, cwd=project.root)
        try:
            text = _wait_for(log_path, "poll feed='Stuck' status=poll-deadline", proc)
            assert "stuck in fetch page" in text
            ended = text.index("poll feed='Stuck' status=poll-deadline")
            deadline = time.monotonic() + 20
            while log_path.read_text().count("poll feed='Fine' status=", ended) < 2:
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.1)
            health = {f["name"]: f for f in map(json.loads, project.cli(
                "feeds", "list", "--json").stdout.splitlines())}
            assert health["Stuck"]["status"] == "poll-deadline"
            assert health["Fine"]["status"] in ("ok", "not-modified")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    assert _rows(project, "SELECT lease_owner FROM feeds") == [(None,), (None,)]


def test_the_watchdog_names_the_stages_a_poll_is_stuck_in() -> None:
    stages = Stages()

    async def hung_pages() -> None:
        await asyncio.gather(stages.run("fetch page", asyncio.sleep(NEVER)),
                             stages.run("fetch page", asyncio.sleep(NEVER)),
                             stages.run("extract", asyncio.sleep(NEVER)))

    with pytest.raises(PollDeadline) as caught:
        asyncio.run(within_deadline(hung_pages(), 0.2, stages, "http://example.test/feed"))
    assert caught.value.reason == "poll-deadline"
    assert "stuck in fetch page (2 entries), extract (1 entry)" in caught.value.message
    assert stages.describe() == "between two stages"  # the cancelled steps left their stage

    async def cancelled_from_outside() -> None:
        # A shutdown's cancellation stays a cancellation, whatever the deadline.
        poll = asyncio.ensure_future(within_deadline(asyncio.sleep(NEVER), 0.1, Stages(), "x"))
        await asyncio.sleep(0.05)
        poll.cancel()
        with pytest.raises(asyncio.CancelledError):
            await poll
        assert await within_deadline(asyncio.sleep(0.01, "done"), 5, Stages(), "x") == "done"

    asyncio.run(cancelled_from_outside())
