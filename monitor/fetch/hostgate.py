"""Politeness per host: at most N requests at once to one host, and a gap between two starts.

In: a URL. Out: an async context manager that holds one of the host's slots for the request
(`async with gate.slot(url): ...`). Settings: ``http.per_host_connections`` and
``http.per_host_delay`` (0 turns the gap off); a site's robots.txt may ask for a longer gap
(`slow_down`). Uses asyncio; one gate serves one event loop.
"""

from __future__ import annotations

import asyncio
import functools
from urllib.parse import urlsplit

MAX_ASKED_DELAY = 60.0  # a Crawl-delay beyond this would leave a news site unreadable


class HostGate:
    def __init__(self, *, per_host_connections: int, per_host_delay: float) -> None:
        if per_host_connections < 1:
            raise ValueError("per_host_connections must be at least 1")
        self.per_host_connections = per_host_connections
        self.per_host_delay = per_host_delay
        self._hosts: dict[str, _HostSlots] = {}  # made on a host's first request

    def slow_down(self, url: str, delay: float) -> None:
        """Space the starts of requests to `url`'s host by at least `delay` seconds (a site's
        robots.txt Crawl-delay), capped at ``MAX_ASKED_DELAY``; never below the configured gap."""
        self.slot(url).delay = max(self.per_host_delay, min(delay, MAX_ASKED_DELAY))

    def slot(self, url: str) -> _HostSlots:
        """The slots of `url`'s host, to enter with `async with` around one request."""
        host = host_of(url)
        slots = self._hosts.get(host)
        if slots is None:
            slots = self._hosts[host] = _HostSlots(self.per_host_connections, self.per_host_delay)
        return slots


@functools.lru_cache(maxsize=16384)
def host_of(url: str) -> str:
    """The host name of `url`, lower-cased (feed URLs come back every poll: worked out once)."""
    return (urlsplit(url).hostname or "").lower()


class _HostSlots:
    """One host's slots. Entered by many tasks at once: it holds no per-request state."""

    __slots__ = ("_next_start", "_semaphore", "delay")

    def __init__(self, connections: int, delay: float) -> None:
        self._semaphore = asyncio.Semaphore(connections)
        self.delay = delay
        self._next_start = 0.0  # loop time before which the next request may not start

    async def __aenter__(self) -> None:
        await self._semaphore.acquire()
        if self.delay <= 0:
            return
        # The start is booked before sleeping, with no await in between, so two tasks never
        # book the same one; sleeping holds only this host's slot, never the other hosts.
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start)
        self._next_start = start + self.delay
        if start > now:
            try:
                await asyncio.sleep(start - now)
            except BaseException:  # cancelled while waiting: the slot is not held after all
                self._semaphore.release()
                raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._semaphore.release()
