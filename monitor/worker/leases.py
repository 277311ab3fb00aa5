"""Leases of feeds to workers: who a worker is, renewing its leases while it lives, and taking
back those of workers of this host that died. Does I/O.

In: an engine, a worker's identity (``host:pid:nonce``) and the lease time. Out: leases kept
fresh from a thread (`LeaseKeeper`), and the dead workers' leases released at start-up
(`take_over_dead_leases`, with the alert entries they were sending): a killed `run --once`
would otherwise keep its feeds for the whole lease time.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta

from monitor.store.engine import Engine
from monitor.store.feeds import release_dead_leases, renew_leases
from monitor.store.outbox import release_dead_sends
from monitor.worker.liveness import process_alive

log = logging.getLogger("monitor.daemon")


class LeaseKeeper:
    """Renews a worker's leases every third of the lease time, from its own thread, so a long
    poll (or a long `--once` run) keeps its feeds; a worker that dies stops renewing, and its
    feeds go back to the pool when the lease expires."""

    def __init__(self, engine: Engine, owner: str, lease: float) -> None:
        self.engine, self.owner, self.lease = engine, owner, lease
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.lease / 3):
            try:
                renew_leases(self.engine, self.owner,
                             datetime.now(UTC) + timedelta(seconds=self.lease))
            except Exception:  # the database may be back at the next attempt
                log.exception("could not renew the leases of %s", self.owner)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def worker_identity() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def is_dead_local_worker(owner: str) -> bool:
    """True for a worker identity of this host whose process no longer exists."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    return host == socket.gethostname() and pid.isdigit() and not process_alive(int(pid))


def take_over_dead_leases(engine: Engine) -> None:
    """Free the feeds of the dead workers of this host, and the alert entries they were sending
    (sent again at once, counted as resent: the service may have taken them before the end)."""
    for owner in release_dead_leases(engine, is_dead_local_worker):
        log.warning("released the leases of %s, a worker that died without releasing them",
                    owner)
    for owner in release_dead_sends(engine, is_dead_local_worker, datetime.now(UTC)):
        log.warning("alert entries %s was sending when it died are sent again", owner)
