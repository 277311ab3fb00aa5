"""The fork server of the extraction pool (`cpupool.py`): its context, and its start ahead of need.

In: nothing. Out: the server running: a process that imports the extraction code and runs it
once (`forkwarm.py`), from which the pool's processes are forked. Kept apart from `cpupool.py`,
whose imports (the feed parser, the extraction code) take a tenth of a second or more, so that a
command can start the server before it imports the rest of the worker (`monitor run --once`).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import signal
import threading


def fork_server_context() -> multiprocessing.context.ForkServerContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["monitor.worker.forkwarm"])
    return context


def start_fork_server() -> None:
    """Start the fork server now, unless it runs: it imports the extraction code in its own
    process and runs it once (`warm_up`: about half a second of CPU in all, overlapping the
    caller's own work; 75 MB resident, 16 MB of it justext's stop words), so the pool is quick
    to start. `CpuWork` calls it when work is near; a command sure to need the pool (one feed
    polled now) calls it at once.

    The fork server is started with SIGINT ignored, which it keeps across exec (so Python
    installs no KeyboardInterrupt handler in it): a Ctrl-C while it imports would print a
    traceback (it ignores SIGINT itself only once its imports are done). Only the main thread
    may change a signal's handler: from another (an embedding application's loop) the server
    starts as it is. A SIGINT arriving in the few milliseconds of the start is not seen here."""
    fork_server_context()
    if threading.current_thread() is not threading.main_thread():
        multiprocessing.forkserver.ensure_running()
        return
    handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, handler)
