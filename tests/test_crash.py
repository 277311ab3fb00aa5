"""A process killed at any moment and restarted loses no item and duplicates none."""

from __future__ import annotations

import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter

import pytest

from tests.conftest import SEEDS, Project
from tests.sites import build_bulk_site

ENTRIES = 30


def _stored(project: Project) -> int:
    try:
        with sqlite3.connect(project.database, timeout=5) as conn:
            query = "select count(*) from items where feed_id is not null"
            return conn.execute(query).fetchone()[0]
    except sqlite3.OperationalError:
        return 0


@pytest.mark.slow
def test_kill_during_runs_loses_nothing_and_duplicates_nothing(project: Project) -> None:
    site = build_bulk_site("127.0.0.5", ENTRIES, page_delay=0.15)
    try:
        project.write_feeds([{"url": site.feed_url, "name": "Bulk", "lang": "fr"}])
        project.cli("init")
        rng = random.Random(7)
        kills = 0
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
                while _stored(project) < target and proc.poll() is None:
                    assert time.monotonic() < deadline, "the run made no progress"
                    time.sleep(0.02)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
        assert kills >= 3
        project.cli("run", "--once")  # finish the work
        project.cli("run", "--once")  # and nothing more to do
    finally:
        site.server.close()

    with sqlite3.connect(project.database) as conn:
        rows = conn.execute(
            "select url, relevant, corpus_file from items where feed_id is not null").fetchall()
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
