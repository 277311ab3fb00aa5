"""The event loop the polls run on: uvloop where it is installed, asyncio's own otherwise.

In: a coroutine (a cycle of `run --once`, the daemon, `feeds poll`). Out: its result, the
coroutine run to its end on a new loop, as `asyncio.run` does.

A cycle of 304s is the event loop's own work, request after request: on 2 cores, 2,000
feeds answered 304 by nginx (`bench/steady_state.py`'s feeds), eight cycles each way in one
process, interleaved, gave a median cycle of 0.68 s on uvloop against 0.79 s on asyncio's loop
(the loop's CPU 266 against 313 µs a poll); bare aiohttp alone gains about 5% from it, in the
same sitting. uvloop does not exist on Windows, where asyncio's loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

try:
    import uvloop
except ImportError:  # not installed (Windows): asyncio's own loop
    uvloop = None

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    """`main` run to its end on a new event loop (`asyncio.run`, on uvloop when it is there)."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop if uvloop else None) as runner:
        return runner.run(main)
