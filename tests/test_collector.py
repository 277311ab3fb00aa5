"""Python's garbage collector in the processes monitor owns (`monitor.worker.collector`).

What start-up made is frozen out of the collector's scans and the young generation is collected
less often: in a fresh interpreter, and in the `run` command while it polls. Cycles made
afterwards are still collected; the test run's own collector is left as it was by a command run
in it (`tests.commandline`).
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import threading
import time

from monitor.worker.collector import YOUNG_THRESHOLD
from tests.conftest import Project
from tests.httpserver import LoopbackServer, Reply
from tests.sites import RSS, rss

# Run in an interpreter of its own: freezing is for the rest of a process.
_FRESH_INTERPRETER = """
import gc, json, weakref
import sqlalchemy  # a library's worth of long-lived objects
from monitor.worker.collector import settle_after_startup
tracked, thresholds = len(gc.get_objects()), gc.get_threshold()
settle_after_startup()
scanned = len(gc.get_objects())
class Node:
    pass
first, second = Node(), Node()
first.other, second.other = second, first  # a cycle made after start-up
collected = []
weakref.finalize(first, collected.append, True)
del first, second
gc.collect()
print(json.dumps({"tracked": tracked, "frozen": gc.get_freeze_count(), "scanned": scanned,
                  "before": thresholds, "after": gc.get_threshold(),
                  "cycle_collected": bool(collected)}))
"""


def test_start_up_is_frozen_out_of_collections_and_later_cycles_are_collected() -> None:
    out = subprocess.run([sys.executable, "-c", _FRESH_INTERPRETER], capture_output=True,
                         text=True, check=True, timeout=60).stdout
    seen = json.loads(out)
    assert seen["tracked"] > 20_000  # the interpreter and SQLAlchemy
    assert seen["frozen"] >= seen["tracked"]
    assert seen["scanned"] < 100  # what a collection still goes through
    assert seen["after"] == [YOUNG_THRESHOLD, *seen["before"][1:]]
    assert seen["before"][0] < YOUNG_THRESHOLD
    assert seen["cycle_collected"]


def test_the_run_command_polls_with_its_start_up_frozen(project: Project) -> None:
    # Sampled from this process while the command runs in it: the feed's answer is slow, so
    # the samples cover the polling. The command line harness puts the collector back after.
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    seen: set[tuple[int, bool]] = set()
    running = threading.Event()

    def sample() -> None:
        while running.is_set():
            seen.add((gc.get_threshold()[0], gc.get_freeze_count() > 20_000))
            time.sleep(0.005)

    with LoopbackServer("127.0.0.77") as site:
        site.route("/feed.xml", Reply(rss([], link=site.base_url), content_type=RSS, delay=1.0))
        project.write_feeds([{"name": "Slow", "url": site.url("/feed.xml")}])
        running.set()
        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            project.cli("run", "--once")
        finally:
            running.clear()
            sampler.join()
    assert (YOUNG_THRESHOLD, True) in seen  # while it polled
    assert gc.get_threshold() == thresholds and gc.get_freeze_count() == frozen
