"""A process killed at any moment and restarted loses no item and duplicates none."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
import sqlalchemy as sa

from tests.conftest import SEEDS, Project, project_engine
from tests.sites import build_bulk_site

ENTRIES = 30
# A feed's new items are stored together when its poll ends: spread over several feeds, the
# entries are stored a few at a time, so the kills below land at growing numbers of them.
FEEDS = 6


def _stored(engine: sa.Engine) -> int:
    try:
        with engine.connect() as conn:
            query = "select count(*) from items where feed_id is not null"
            return conn.execute(sa.text(query)).scalar()
    except sa.exc.OperationalError:  # the database is being created
        return 0


@pytest.mark.slow
def test_kill_during_runs_loses_nothing_and_duplicates_nothing(
    project: Project, backend: str
) -> None:
    site = build_bulk_site("127.0.0.5", ENTRIES, page_delay=0.15, feeds=FEEDS)
    engine = project_engine(project)
    try:
        project.write_feeds([{"url": url, "name": f"Bulk {number}", "lang": "fr"}
                             for number, url in enumerate(site.feed_urls)])
        project.cli("init")
        rng = random.Random(7)
        kills, stored_at_kill = 0, []
        # Kill at growing numbers of stored items, and once at a random instant.
        for target in (2, 9, 17, None):
            proc = subprocess.Popen(
                [sys.executable, "-m", "monitor", "run", "--once", "--config", str(project.config)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=project.root,
            )
            deadline = time.monotonic() + 60
            if target is None:
                time.sleep(rng.uniform(0.3, 1.5))
            else:
                while _stored(engine) < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the run made no progress"
                    time.sleep(0.02)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
                stored_at_kill.append(_stored(engine))
            proc.wait(timeout=30)
        assert kills >= 3
        # the kills came after some items and before all of them, more each time
        assert 0 < stored_at_kill[0] < stored_at_kill[2] < ENTRIES, stored_at_kill
        project.cli("run", "--once")  # finish the work
        project.cli("run", "--once")  # and nothing more to do
    finally:
        site.server.close()

    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "select url, relevant, corpus_file from items where feed_id is not null")).all()
    urls = Counter(url for url, _, _ in rows)
    assert set(urls) == set(site.links)
    assert max(urls.values()) == 1
    stored_relevant = {url for url, relevant, _ in rows if relevant}
    assert stored_relevant == set(site.relevant_links)

    names = [p.name for p in project.corpus.glob("*.txt")]
    keys = Counter(re.match(r"\d+_([0-9a-f]{16})\.txt", n).group(1) for n in names)
    assert max(keys.values()) == 1, "a corpus file was written twice for one item"
    assert len(names) == len(SEEDS) + len(site.relevant_links)
    assert {c for _, _, c in rows if c} <= set(names)
    numbers = [int(n.split("_")[0]) for n in names]
    assert len(set(numbers)) == len(numbers)
