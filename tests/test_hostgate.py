"""Per-host politeness: at most N requests at once to a host, and a gap between two starts,
measured at a real loopback server."""

from __future__ import annotations

import threading
import time

from monitor.fetch import Fetcher, FetchLimits
from monitor.hostgate import HostGate
from tests.httpserver import LoopbackServer, Reply


def _fetch_all(gate: HostGate, urls: list[str]) -> None:
    limits = FetchLimits(allow_private_networks=True, deadline=10)
    with Fetcher(limits, user_agent="test") as fetcher:
        def one(url: str) -> None:
            with gate.slot(url):
                fetcher.get(url)

        threads = [threading.Thread(target=one, args=(url,)) for url in urls]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def _most_at_once(server: LoopbackServer, path: str, duration: float) -> int:
    starts = sorted(r.at for r in server.requests(path))
    return max(sum(1 for other in starts if start <= other < start + duration) for start in starts)


def test_per_host_connections_limit_and_other_hosts_go_on() -> None:
    with LoopbackServer("127.0.0.7") as a, LoopbackServer("127.0.0.8") as b:
        a.route("/slow", Reply(b"ok", delay=0.3))
        b.route("/slow", Reply(b"ok", delay=0.3))
        gate = HostGate(per_host_connections=2, per_host_delay=0)
        started = time.monotonic()
        _fetch_all(gate, [a.url("/slow")] * 6 + [b.url("/slow")] * 2)
        elapsed = time.monotonic() - started
        assert len(a.requests("/slow")) == 6
        assert _most_at_once(a, "/slow", 0.25) == 2  # never 3 at once on host a
        assert _most_at_once(b, "/slow", 0.25) == 2  # host b not held up by host a
        assert 0.85 < elapsed < 3  # 6 requests, 2 at a time, 0.3 s each


def test_per_host_delay_spaces_requests() -> None:
    with LoopbackServer("127.0.0.7") as server:
        server.route("/page", Reply(b"ok"))
        gate = HostGate(per_host_connections=4, per_host_delay=0.2)
        _fetch_all(gate, [server.url("/page")] * 4)
        starts = sorted(r.at for r in server.requests("/page"))
        gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
        assert len(starts) == 4 and min(gaps) >= 0.18
