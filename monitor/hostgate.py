"""Politeness per host: at most N requests at once to one host, and a gap between two.

In: a URL. Out: a context manager that holds one of the host's slots for the request. Settings:
``http.per_host_connections`` and ``http.per_host_delay`` (0 turns the gap off).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


class HostGate:
    def __init__(self, *, per_host_connections: int, per_host_delay: float) -> None:
        self.per_host_connections = per_host_connections
        self.per_host_delay = per_host_delay
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def slot(self, url: str) -> Iterator[None]:
        host = (urlsplit(url).hostname or "").lower()
        with self._lock:
            semaphore = self._slots.setdefault(
                host, threading.BoundedSemaphore(self.per_host_connections))
        with semaphore:
            if self.per_host_delay > 0:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next_start.get(host, 0.0))
                    self._next_start[host] = start + self.per_host_delay
                if start > now:
                    time.sleep(start - now)
            yield
