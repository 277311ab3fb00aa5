"""Per-host politeness: at most N requests at once to a host, and a gap between two starts,
measured at real loopback servers (the requests go through the real fetcher)."""

from __future__ import annotations

import asyncio
import time

import pytest

from monitor.fetch.client import Fetcher, FetchLimits
from monitor.fetch.hostgate import HostGate
from tests.httpserver import LoopbackServer, Reply


def _fetch_all(gate: HostGate, urls: list[str]) -> float:
    """Every URL fetched in its own task, each inside its host's slot; seconds taken."""
    limits = FetchLimits(allow_private_networks=True, deadline=10)

    async def one(fetcher: Fetcher, url: str) -> None:
        async with gate.slot(url):
            await fetcher.get(url)

    async def run() -> float:
        # No cap in the fetcher's connector: what limits the requests here is the gate.
        async with Fetcher(limits) as fetcher:
            started = time.monotonic()
            await asyncio.gather(*(one(fetcher, url) for url in urls))
            return time.monotonic() - started

    return asyncio.run(run())


def test_per_host_connections_limit_and_other_hosts_go_on() -> None:
    with LoopbackServer("127.0.0.7") as a, LoopbackServer("127.0.0.8") as b:
        a.route("/slow", Reply(b"ok", delay=0.3))
        b.route("/slow", Reply(b"ok", delay=0.3))
        gate = HostGate(per_host_connections=2, per_host_delay=0)
        started = time.monotonic()
        elapsed = _fetch_all(gate, [a.url("/slow")] * 6 + [b.url("/slow")] * 2)
        assert len(a.requests("/slow")) == 6
        assert a.most_requests_at_once == 2  # never 3 at once on host a ...
        assert a.most_connections_at_once == 2  # ... nor 3 connections open to it
        assert b.most_requests_at_once == 2  # host b not held up by host a ...
        assert max(r.at for r in b.requests("/slow")) - started < 0.25  # ... nor made to wait
        assert 0.85 < elapsed < 3  # 6 requests, 2 at a time, 0.3 s each


def test_per_host_delay_spaces_request_starts() -> None:
    with LoopbackServer("127.0.0.7") as server:
        server.route("/page", Reply(b"ok"))
        gate = HostGate(per_host_connections=4, per_host_delay=0.2)
        _fetch_all(gate, [server.url("/page")] * 4)
        starts = sorted(r.at for r in server.requests("/page"))
        gaps = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
        assert len(starts) == 4 and min(gaps) >= 0.18


def test_a_host_waiting_out_its_delay_does_not_hold_up_another() -> None:
    with LoopbackServer("127.0.0.7") as polite, LoopbackServer("127.0.0.8") as other:
        polite.route("/page", Reply(b"ok"))
        other.route("/page", Reply(b"ok"))
        gate = HostGate(per_host_connections=1, per_host_delay=1.0)
        started = time.monotonic()
        _fetch_all(gate, [polite.url("/page")] * 3 + [other.url("/page")])
        polite_starts = sorted(r.at - started for r in polite.requests("/page"))
        other_start = other.requests("/page")[0].at - started
        assert polite_starts[2] >= 1.95  # the third waited two gaps
        assert other_start < 0.5  # while the first host's requests sat out their gaps


def test_hosts_are_told_apart_by_name_and_share_nothing() -> None:
    gate = HostGate(per_host_connections=1, per_host_delay=0)
    assert gate.slot("http://Example.com/a") is gate.slot("http://example.com:8080/b")
    assert gate.slot("http://example.com/") is not gate.slot("http://example.org/")


def test_zero_slots_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        HostGate(per_host_connections=0, per_host_delay=0)
