"""`monitor run --workers N`: N worker processes on this machine, watched and stopped together.

In: `Settings` and N. Out: the exit status (0 when every worker stopped cleanly). Each worker
is a `monitor run` subprocess with its own identity and leases (see daemon.py); the database
shares the feeds out between them, and between the workers of other machines. A worker that
dies (killed, crashed) is started again after a pause that grows while it keeps dying young;
its feeds go back to the pool at once, because a new worker frees the leases of dead local
processes when it starts. The first SIGTERM/SIGINT is passed on to every worker, which finish
their in-flight polls; a second one is passed on too and makes them exit at once. Workers run
in their own process group (a terminal's Ctrl-C reaches them once, through us), and stop by
themselves if this process disappears.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from monitor.settings import Settings

log = logging.getLogger("monitor.supervisor")
RESTART_DELAY_MIN, RESTART_DELAY_MAX = 1.0, 60.0
YOUNG_SECONDS = 60.0  # a worker that dies younger than this waits longer before its restart


@dataclass
class _Worker:
    number: int
    process: subprocess.Popen
    started: float
    delay: float = RESTART_DELAY_MIN
    restart_at: float | None = None  # set while it is dead and waiting to be started again
    signalled: bool = False


def worker_command(settings: Settings, parent_pid: int) -> list[str]:
    return [sys.executable, "-m", "monitor", "run", "--config", str(settings.config_path),
            "--parent-pid", str(parent_pid)]


def run_workers(settings: Settings, count: int) -> int:
    """Start `count` workers and keep them running until a signal; returns the exit status."""
    command = worker_command(settings, os.getpid())
    stop = threading.Event()

    def start(number: int, delay: float = RESTART_DELAY_MIN) -> _Worker:
        process = subprocess.Popen(command, process_group=0, stdin=subprocess.DEVNULL)
        log.info("worker %d/%d started (pid %d)", number, count, process.pid)
        return _Worker(number, process, time.monotonic(), delay)

    def on_signal(signum, _frame) -> None:
        stop.set()
        for worker in workers:
            if worker.restart_at is None and worker.process.poll() is None:
                worker.process.send_signal(signum)
                worker.signalled = True

    workers: list[_Worker] = []
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for number in range(1, count + 1):
            workers.append(start(number))
        while not stop.wait(0.2):
            now = time.monotonic()
            for index, worker in enumerate(workers):
                if worker.restart_at is not None:
                    if now >= worker.restart_at and not stop.is_set():
                        workers[index] = start(worker.number, worker.delay)
                elif (status := worker.process.poll()) is not None:
                    _plan_restart(worker, status, now)
        for worker in workers:  # started while the signal was being handled
            if worker.restart_at is None and not worker.signalled \
                    and worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
                worker.signalled = True
        stopped = [worker for worker in workers if worker.signalled]
        statuses = [worker.process.wait() for worker in stopped]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A worker killed by the signal we passed on before it could handle it stopped as asked.
    clean = (0, -signal.SIGTERM, -signal.SIGINT)
    for worker, status in zip(stopped, statuses, strict=True):
        if status not in clean:
            log.warning("worker %d (pid %d) exited with status %d", worker.number,
                        worker.process.pid, status)
    log.info("all %d workers stopped", count)
    return 0 if all(status in clean for status in statuses) else 1


def _plan_restart(worker: _Worker, status: int, now: float) -> None:
    lived = now - worker.started
    worker.delay = (min(worker.delay * 2, RESTART_DELAY_MAX) if lived < YOUNG_SECONDS
                    else RESTART_DELAY_MIN)
    worker.restart_at = now + worker.delay
    how = f"signal {signal.Signals(-status).name}" if status < 0 else f"status {status}"
    log.warning("worker %d (pid %d) died (%s) after %.0f s; starting it again in %.0f s",
                worker.number, worker.process.pid, how, lived, worker.delay)
