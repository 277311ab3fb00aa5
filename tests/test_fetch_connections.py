"""fetch: what the fetcher's one session does with connections, cookies and the environment,
counted at real loopback servers (tests/test_fetch.py has the guards of a single get)."""

from __future__ import annotations

import asyncio

import pytest

from monitor import USER_AGENT
from monitor.errors import HTTPStatus, RefusedPrivate
from monitor.fetch.client import Fetcher, FetchLimits, fetch_once
from tests.httpserver import LoopbackServer, Redirect, Reply

LIMITS = FetchLimits(connect_timeout=2.0, read_timeout=2.0, deadline=5.0,
                     allow_private_networks=True)  # fmt: skip


def test_sequential_gets_to_one_host_use_one_connection() -> None:
    with LoopbackServer("127.0.0.31") as server:
        server.route("/feed", Reply(b"<rss/>", conditional=True))
        server.route("/moved", Redirect("/feed", status=301))
        server.route("/gone", Reply(b"short error page", status=410))

        async def polls() -> list[int]:
            statuses = []
            async with Fetcher(LIMITS) as fetcher:
                first = await fetcher.get(server.url("/feed"))
                statuses.append(first.status)
                for _ in range(4):
                    again = await fetcher.get(server.url("/moved"), etag=first.etag)
                    statuses.append(again.status)
                with pytest.raises(HTTPStatus):
                    await fetcher.get(server.url("/gone"))
            return statuses

        assert asyncio.run(polls()) == [200, 304, 304, 304, 304]
        assert len(server.requests("/feed")) == 5 and len(server.requests("/gone")) == 1
        assert server.connections == 1


def test_a_long_error_body_is_abandoned_with_its_connection() -> None:
    with LoopbackServer("127.0.0.31") as server:
        server.route("/gone", Reply(b"x" * 1024 * 1024, status=404))
        server.route("/ok", Reply(b"ok"))

        async def two_gets() -> bytes:
            async with Fetcher(LIMITS) as fetcher:
                with pytest.raises(HTTPStatus):
                    await fetcher.get(server.url("/gone"))
                return (await fetcher.get(server.url("/ok"))).content

        assert asyncio.run(two_gets()) == b"ok"
        assert server.connections == 2  # the 1 MB error page was not read to reuse its socket


def test_200_conditional_gets_through_a_few_connections() -> None:
    with LoopbackServer("127.0.0.32") as server:
        server.route("/feed", Reply(b"<rss>unchanged</rss>", conditional=True))

        async def poll_200_times() -> list[int]:
            async with Fetcher(LIMITS, max_connections=8) as fetcher:
                etag = (await fetcher.get(server.url("/feed"))).etag
                answers = await asyncio.gather(
                    *(fetcher.get(server.url("/feed"), etag=etag) for _ in range(200))
                )
            return [answer.status for answer in answers]

        statuses = asyncio.run(poll_200_times())
        assert statuses == [304] * 200
        assert len(server.requests("/feed")) == 201
        assert server.connections <= 8  # sockets reused, never past max_connections
        assert server.most_connections_at_once <= 8


def test_cookies_are_not_carried_to_later_requests() -> None:
    # Reached by name: a cookie jar would keep cookies of a named host, not of an IP address.
    with LoopbackServer("127.0.0.1") as server:
        server.route("/a", Reply(b"a", headers={"Set-Cookie": "session=abc; Path=/"}))
        server.route("/b", Reply(b"b"))

        async def two_gets() -> None:
            async with Fetcher(LIMITS) as fetcher:
                await fetcher.get(f"http://localhost:{server.port}/a")
                await fetcher.get(f"http://localhost:{server.port}/b")

        asyncio.run(two_gets())
        assert "cookie" not in server.requests("/b")[0].headers


def test_proxy_settings_of_the_environment_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy would connect for us, out of reach of the address check.
    with LoopbackServer("127.0.0.36") as proxy, LoopbackServer("127.0.0.37") as site:
        site.route("/feed", Reply(b"direct"))
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy.base_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        assert fetch_once(site.url("/feed"), LIMITS).content == b"direct"
        assert proxy.connections == 0


def test_fetch_once_runs_one_get_outside_an_event_loop() -> None:
    with LoopbackServer("127.0.0.38") as server:
        server.route("/feed", Reply(b"<rss/>" * 100, gzip=True))
        fetched = fetch_once(server.url("/feed"), LIMITS)
        assert fetched.content == b"<rss/>" * 100
        assert server.requests("/feed")[0].headers["user-agent"] == USER_AGENT
        with pytest.raises(RefusedPrivate):
            fetch_once(server.url("/feed"), FetchLimits())
        assert server.connections == 1
