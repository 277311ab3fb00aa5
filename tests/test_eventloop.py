"""The event loop the polls run on (`monitor.worker.eventloop`): uvloop where it is installed
(it is, with monitor, on Linux), asyncio's own without it; the same cycle either way, pages
fetched, extracted and stored.
"""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from monitor.settings import load_settings
from monitor.worker import eventloop
from monitor.worker.daemon import CycleReport, run_once
from tests.conftest import SEEDS, Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import HTML, RSS, rss, seed_article, seed_page


def _cycle(project: Project, address: str) -> tuple[set[type], CycleReport]:
    """A first `run_once` of two feeds with a new article each; the types of the event loops
    the polls ended on (asked as each poll ends, on the loop that runs it)."""
    loops: set[type] = set()
    with LoopbackServer(address) as site:
        specs = []
        for n, seed in enumerate(SEEDS[:2]):
            title, paragraphs = seed_article(seed)
            site.route(f"/a{n}", Reply(seed_page(title, paragraphs), content_type=HTML))
            entry = {"title": title, "link": site.url(f"/a{n}"), "guid": f"a{n}"}
            site.route(f"/feed{n}.xml", Reply(rss([entry], link=site.base_url), content_type=RSS))
            specs.append({"name": f"Site {n}", "url": site.url(f"/feed{n}.xml")})
        project.write_feeds(specs)
        project.cli("init")
        report = run_once(load_settings(project.config, environ={}),
                          progress=lambda _: loops.add(type(asyncio.get_running_loop())))
    return loops, report


def test_the_polls_run_on_uvloop(project: Project) -> None:
    loops, report = _cycle(project, "127.0.0.78")
    assert loops == {uvloop.Loop}
    assert (report.feeds, report.ok, report.new_items) == (2, 2, 2)


def test_without_uvloop_the_polls_run_on_asyncios_loop(project: Project,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventloop, "uvloop", None)  # as where it does not exist (Windows)
    loops, report = _cycle(project, "127.0.0.79")
    assert len(loops) == 1 and not issubclass(loops.pop(), uvloop.Loop)
    assert (report.feeds, report.ok, report.new_items) == (2, 2, 2)
