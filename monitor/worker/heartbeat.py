"""The workers' heartbeats: is every worker of this configuration on this machine ticking?
Does I/O (small files in the temporary folder).

In: a configuration file (a worker's, or the one `monitor healthcheck` reads) and the tick.
Out: a `Heartbeat` each worker touches after every good tick (the feeds file and rules read,
the due feeds claimed from the database), and `worker_health`, the verdict of the container's
health check. A worker whose event loop is stuck, or whose database does not answer, stops
beating; its beat grows stale after `STALE_TICKS` ticks. The folder is per user and per
configuration file (so two monitors of one machine do not see each other), and holds one file
per worker process, named by its pid.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.worker.liveness import process_alive

STALE_TICKS = 3
STALE_FLOOR_SECONDS = 30.0  # a short tick should not make a brief pause look like a hang


def heartbeat_folder(config_path: Path) -> Path:
    """Where the workers of `config_path` on this machine, run by this user, beat."""
    key = hashlib.sha256(str(config_path.resolve()).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"monitor-{os.getuid()}" / f"heartbeat-{key}"


def stale_after(tick: float) -> float:
    """Seconds without a beat after which a worker is not ticking."""
    return max(STALE_TICKS * tick, STALE_FLOOR_SECONDS)


class Heartbeat:
    """One worker process's heartbeat file: `beat` after each good tick, `close` on the way
    out. Starting also removes the files of this folder's workers that died."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        for other in _beats(folder):
            if not process_alive(int(other.name)):
                other.unlink(missing_ok=True)
        self.path = folder / str(os.getpid())

    def beat(self) -> None:
        self.path.touch()

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass(frozen=True)
class WorkerHealth:
    healthy: bool
    message: str  # one line for the health check's log


def worker_health(folder: Path, limit: float, now: float | None = None) -> WorkerHealth:
    """Healthy when at least one worker of `folder` runs and every running one beat less than
    `limit` seconds ago (the files of dead workers are left out)."""
    now = time.time() if now is None else now
    ages: dict[int, float] = {}
    for path in _beats(folder):
        pid = int(path.name)
        try:
            age = now - path.stat().st_mtime
        except FileNotFoundError:  # its worker just stopped
            continue
        if process_alive(pid):
            ages[pid] = age
    if not ages:
        return WorkerHealth(False, "no worker is running for this configuration on this "
                                   "machine (or none has finished its first tick yet)")
    stale = {pid: age for pid, age in ages.items() if age >= limit}
    if stale:
        listed = ", ".join(f"pid {pid} {age:.0f} s ago" for pid, age in sorted(stale.items()))
        return WorkerHealth(False, f"{len(stale)} of {len(ages)} workers stopped ticking "
                                   f"(last tick: {listed}; limit {limit:.0f} s): stuck, or "
                                   "the database does not answer (see their log)")
    return WorkerHealth(True, f"{len(ages)} workers ticking (each ticked at most "
                              f"{max(ages.values()):.0f} s ago)")


def _beats(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [path for path in folder.iterdir() if path.name.isdigit()]
