"""Python's garbage collector set for a long-lived poller: start-up's objects out of its scans.

In: nothing. Out: nothing; `settle_after_startup` changes this process's collector (`gc`), so
only the command that owns its process calls it (`monitor run`), never code an embedding
application calls. (`classify` freezes its rules alone: the threshold measured no faster there.)

A `monitor run` process holds about 140,000 objects the collector tracks once its modules are
imported and its settings, rules and storage are set up, and keeps nearly all of them to its
exit. The collector scans every one of them at each full collection (about 0.1 s), and collects
the young generation every 700 new objects, while the objects of the polls under way
(coroutines, futures, requests; 64 at once by default) are young and alive, so they are scanned
again and again and promoted. Measured in `run --once`: 37–61 ms of collections during the
polls of a 304 cycle of 2,000 feeds (0.9 s), 0.57–0.82 s in a first cycle of 2,000 new feeds
(10 s); more where a full collection falls in the cycle. Frozen (`gc.freeze`), what exists is
never scanned again; with a young threshold of 10,000 most of a poll's objects are freed by
their reference counts before a collection sees them: 4–5 ms and 0.05–0.09 s. Reference
cycles made afterwards are collected as before; a cycle among the frozen objects, if one
becomes garbage, is kept until the process exits.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000  # new objects between two collections of the young generation


def settle_after_startup() -> None:
    """Freeze the objects made so far out of the collector's scans and collect the young
    generation less often; call it once start-up is done, in a process monitor owns."""
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
