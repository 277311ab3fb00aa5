"""The steady state: a cycle where every feed answers 304 Not Modified. It starts no process
(neither the extraction pool nor its fork server), and the polls it records are the same as
ever: each feed not-modified, its validators kept, its lease freed, its next poll scheduled."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import RSS, rss

# Runs `run_once` in a process of its own (a fork server started by another test of this
# process would hide one started here), then lists that process's children.
_ONCE_THEN_CHILDREN = """
import os, sys
from pathlib import Path
from monitor.settings import load_settings
from monitor.worker.daemon import run_once
report = run_once(load_settings(sys.argv[1]))
children = [p.name for p in Path("/proc").iterdir() if p.name.isdigit()
            and (p / "stat").exists()
            and int((p / "stat").read_bytes().rsplit(b")", 1)[1].split()[1]) == os.getpid()]
print(report.feeds, report.ok, len(children))
"""


def _feeds(site: LoopbackServer, count: int) -> list[dict]:
    for n in range(count):
        entries = [{"title": f"Dépêche {n}", "link": site.url(f"/p{n}"), "guid": f"g{n}"}]
        site.route(f"/feed{n}.xml", Reply(rss(entries, link=site.base_url), content_type=RSS,
                                          conditional=True))
    return [{"url": site.url(f"/feed{n}.xml"), "name": f"feed {n}"} for n in range(count)]


def test_a_cycle_of_304s_starts_no_process(project: Project) -> None:
    with LoopbackServer("127.0.0.61") as site:
        project.write_feeds(_feeds(site, 3))
        project.cli("init")
        project.cli("run", "--once", own_process=True)  # the feeds' news: pages, validators
        done = subprocess.run([sys.executable, "-c", _ONCE_THEN_CHILDREN, str(project.config)],
                              capture_output=True, text=True, timeout=60,
                              cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["3", "3", "0"]  # 3 feeds, 3 ok (not modified), no child
