"""Progress on a terminal (monitor/cli/progress.py), seen as a person sees it: `monitor` run in a
process of its own with its output on a pseudo-terminal. run --once shows feeds done of
claimed, pages fetched and items so far, its log lines above; reclassify, export and feeds
import-opml show theirs; nothing with --quiet or when standard error is not a terminal; no
colour with NO_COLOR."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys

import pytest

from tests.conftest import FIXTURES, SEEDS, Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import rss, seed_article, seed_page

COLOUR = re.compile(r"\x1b\[[0-9;]*(3[0-9]|9[0-7]|38;)[0-9;]*m")


def _in_terminal(project: Project, *args: str, env: dict | None = None) -> tuple[int, str]:
    """`monitor ARGS` with standard output and error on a pseudo-terminal: (status, output)."""
    leader, follower = pty.openpty()
    full_env = {**os.environ, "TERM": "xterm-256color", **(env or {})}
    if "NO_COLOR" not in (env or {}):
        full_env.pop("NO_COLOR", None)
    proc = subprocess.Popen([sys.executable, "-m", "monitor", *args, "--config",
                             str(project.config)], stdin=subprocess.DEVNULL, stdout=follower,
                            stderr=follower, cwd=project.root, env=full_env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return proc.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


@pytest.fixture
def polled(project: Project):
    """A project with one feed of one relevant article on a loopback site."""
    title, paragraphs = seed_article(SEEDS[0])
    with LoopbackServer("127.0.0.23") as site:
        site.route("/article", Reply(seed_page(title, paragraphs),
                                     content_type="text/html; charset=utf-8"))
        site.route("/feed", Reply(rss([{"title": title, "link": site.url("/article"),
                                        "guid": "a"}], link=site.url("/")),
                                  content_type="application/rss+xml"))
        project.write_feeds([{"url": site.url("/feed"), "name": "Le Site"}])
        yield project


def test_run_once_shows_its_progress_on_a_terminal_only(polled: Project) -> None:
    status, shown = _in_terminal(polled, "run", "--once")
    assert status == 0
    assert "polling feeds" in shown and "1/1" in shown
    assert re.search(r"pages 1 +new items 1 +relevant 1", shown), shown
    assert COLOUR.search(shown)  # rich colours the bar on a colour terminal
    assert "poll feed='Le Site' status=ok" in shown  # the log line, above the bar

    piped = polled.cli("run", "--once")  # standard error is no terminal
    assert "polled 1 feeds" in piped.stdout and "polling feeds" not in piped.stderr
    assert "\x1b[" not in piped.stderr + piped.stdout


def test_export_and_opml_import_show_theirs(project: Project) -> None:
    project.cli("init")
    status, shown = _in_terminal(project, "export", "--format", "jsonl", "-o",
                                 str(project.root / "out.jsonl"))
    assert status == 0 and "exporting items" in shown and "exported 5 items" in shown
    status, shown = _in_terminal(project, "feeds", "import-opml",
                                 str(FIXTURES / "opml" / "feedly-style.opml"))
    assert status == 0 and "reading outlines" in shown and "valid" in shown


def test_reclassify_shows_its_own_unless_quiet_and_without_colour_with_no_color(
        project: Project) -> None:
    project.cli("init")
    status, shown = _in_terminal(project, "reclassify", "--force")
    assert status == 0 and "reclassifying" in shown and f"{len(SEEDS)}/{len(SEEDS)}" in shown
    status, shown = _in_terminal(project, "reclassify", "--force", "-q")
    assert status == 0 and "reclassifying" not in shown and "5 re-classified" in shown
    status, plain = _in_terminal(project, "reclassify", "--force", env={"NO_COLOR": "1"})
    assert status == 0 and "reclassifying" in plain and not COLOUR.search(plain)
