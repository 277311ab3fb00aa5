"""robots: RobotsCache against real loopback sites serving real robots.txt files (no mocks).

The robots.txt files are read by a small test fetch function (urllib in a thread) that keeps to
the documented fetch contract: an answer with .url .status .headers .content, HTTPStatus for a
non-2xx answer, other FetchError subclasses for the rest.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from monitor import USER_AGENT
from monitor.errors import ConnectFailed, FetchTimeout, HTTPStatus, RobotsDisallowed
from monitor.fetch.robots import RobotsCache
from tests.httpserver import Drop, LoopbackServer, Redirect, Reply

TTL = 86400.0
RETRY = 600.0
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Answer:
    url: str
    status: int
    headers: dict[str, str]
    content: bytes


def _get(url: str) -> Answer:
    try:
        with _NO_PROXY.open(url, timeout=1.0) as response:
            headers = {key.lower(): value for key, value in response.headers.items()}
            return Answer(response.url, response.status, headers, response.read())
    except urllib.error.HTTPError as exc:
        raise HTTPStatus(
            f"{url}: answered {exc.code}", status=exc.code, retry_after=exc.headers["retry-after"]
        ) from exc
    except TimeoutError as exc:
        raise FetchTimeout(f"{url}: no answer in time") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise ConnectFailed(f"{url}: {exc}") from exc


async def fetch(url: str) -> Any:
    return await asyncio.to_thread(_get, url)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Site:
    server: LoopbackServer
    clock: Clock = field(default_factory=Clock)

    def robots(self, *replies: Reply | Redirect | Drop) -> None:
        self.server.route("/robots.txt", *replies)

    def cache(self, **options: Any) -> RobotsCache:
        options.setdefault("user_agent", USER_AGENT)
        return RobotsCache(fetch, ttl=TTL, clock=self.clock, retry=RETRY, **options)

    def url(self, path: str) -> str:
        return self.server.url(path)

    @property
    def reads(self) -> int:
        return len(self.server.requests("/robots.txt"))


def text(body: str, status: int = 200, **options: Any) -> Reply:
    return Reply(body.encode(), status=status, content_type="text/plain", **options)


@pytest.fixture
def site() -> Iterator[Site]:
    with LoopbackServer("127.0.0.21") as server:
        yield Site(server)


async def allowed(cache: RobotsCache, url: str) -> bool:
    """`cache.check(url)` as a yes or no."""
    try:
        await cache.check(url)
    except RobotsDisallowed:
        return False
    return True


def verdicts(cache: RobotsCache, site: Site, *paths: str) -> dict[str, bool]:
    async def ask() -> list[bool]:
        return [await allowed(cache, site.url(path)) for path in paths]

    return dict(zip(paths, asyncio.run(ask()), strict=True))


def test_a_disallowed_path_is_refused_naming_the_rule_and_others_are_allowed(site: Site) -> None:
    site.robots(text("# news site\nUser-agent: *\nDisallow: /private/\nDisallow: /p\n"))
    cache = site.cache()
    assert verdicts(cache, site, "/private/a.html", "/news/a.html", "/") == {
        "/private/a.html": False, "/news/a.html": True, "/": True,
    }  # fmt: skip
    with pytest.raises(RobotsDisallowed) as refused:
        asyncio.run(cache.check(site.url("/private/a.html")))
    assert refused.value.reason == "robots-disallowed"
    message = refused.value.message
    assert site.url("/robots.txt") in message
    assert "line 3, 'Disallow: /private/'" in message  # the longest rule that matches
    assert "http.robots_txt: false" in message
    asyncio.run(cache.check(site.url("/news/a.html")))  # no error


def test_our_own_group_wins_over_the_star_group(site: Site) -> None:
    site.robots(text(
        "User-agent: *\nDisallow: /\n\n"
        "User-agent: otherbot\n\nUser-agent: Monitor\nDisallow: /private/\n"
    ))  # fmt: skip
    ours = site.cache()
    assert ours.token == "monitor"
    assert verdicts(ours, site, "/news/a.html", "/private/a.html") == {
        "/news/a.html": True, "/private/a.html": False,
    }  # fmt: skip
    with pytest.raises(
        RobotsDisallowed, match="line 7, 'Disallow: /private/', in its group for 'm"
    ):
        asyncio.run(ours.check(site.url("/private/a.html")))
    stranger = site.cache(user_agent="crawler/2.0 (+https://example.org)")
    assert verdicts(stranger, site, "/news/a.html") == {"/news/a.html": False}
    with pytest.raises(RobotsDisallowed, match="line 2, 'Disallow: /', in its group for '\\*'"):
        asyncio.run(stranger.check(site.url("/news/a.html")))


def test_allow_overrides_a_shorter_disallow(site: Site) -> None:
    site.robots(text(
        "User-agent: monitor\nDisallow: /news/\nAllow: /news/public/\n"
        "Disallow: /tie\nAllow: /tie\n"
    ))  # fmt: skip
    assert verdicts(site.cache(), site, "/news/x", "/news/public/x", "/tie/x") == {
        "/news/x": False, "/news/public/x": True, "/tie/x": True,
    }  # fmt: skip


def test_wildcards_and_end_anchors(site: Site) -> None:
    site.robots(text("User-agent: *\nDisallow: /*.pdf$\nDisallow: /*?print=\n"))
    paths = ("/files/report.pdf", "/files/report.pdf?page=2", "/a.html?print=1", "/a.html")
    assert verdicts(site.cache(), site, *paths) == {
        "/files/report.pdf": False, "/files/report.pdf?page=2": True,
        "/a.html?print=1": False, "/a.html": True,
    }  # fmt: skip


@pytest.mark.parametrize("status", [404, 403, 410])
def test_an_unavailable_robots_txt_allows_everything_and_is_kept(site: Site, status: int) -> None:
    site.robots(text("User-agent: *\nDisallow: /\n", status=status))
    cache = site.cache()
    assert verdicts(cache, site, "/a", "/private/b", "/c") == {
        "/a": True,
        "/private/b": True,
        "/c": True,
    }
    site.clock.now += RETRY + 1  # not the short retry: the full ttl
    assert verdicts(cache, site, "/a") == {"/a": True}
    assert site.reads == 1


def test_a_server_error_disallows_everything_until_read_again_after_the_short_retry(
    site: Site,
) -> None:
    site.robots(text("down\n", status=500), text("User-agent: *\nDisallow: /private/\n"))
    cache = site.cache()
    assert verdicts(cache, site, "/news/a", "/b") == {"/news/a": False, "/b": False}
    with pytest.raises(RobotsDisallowed, match="answered 500; RFC 9309 .* again in 600 s"):
        asyncio.run(cache.check(site.url("/news/a")))
    site.clock.now += RETRY - 1
    assert verdicts(cache, site, "/news/a") == {"/news/a": False}
    assert site.reads == 1
    site.clock.now += 2
    assert verdicts(cache, site, "/news/a", "/private/a") == {"/news/a": True, "/private/a": False}
    assert site.reads == 2


def test_a_429_is_asked_again_no_sooner_than_its_retry_after(site: Site) -> None:
    site.robots(text("slow down\n", status=429, headers={"Retry-After": "3600"}), text(""))
    cache = site.cache()
    assert verdicts(cache, site, "/a") == {"/a": False}
    site.clock.now += RETRY + 1
    assert verdicts(cache, site, "/a") == {"/a": False}
    site.clock.now += 3600
    assert verdicts(cache, site, "/a") == {"/a": True}
    assert site.reads == 2


def test_a_dropped_connection_refuses_every_page_as_a_connection_failure(site: Site) -> None:
    site.robots(Drop(), text("User-agent: *\nAllow: /\n"))
    cache = site.cache()
    with pytest.raises(ConnectFailed, match="cannot be reached") as refused:
        asyncio.run(cache.check(site.url("/a")))
    assert refused.value.reason == "connect-failed"
    with pytest.raises(ConnectFailed, match="tried again in 600 s"):
        asyncio.run(cache.check(site.url("/b")))
    assert site.reads == 1
    site.clock.now += RETRY + 1
    assert verdicts(cache, site, "/a") == {"/a": True}


def test_a_site_nobody_listens_on_is_read_once_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = RobotsCache(fetch, user_agent=USER_AGENT, ttl=TTL, retry=RETRY)

    async def ask() -> list[str]:
        reasons = []
        for path in ("/a", "/b", "/c"):
            try:
                await cache.check(f"http://127.0.0.22:9{path}")
            except ConnectFailed as exc:
                reasons.append(exc.reason)
        return reasons

    with caplog.at_level(logging.INFO, logger="monitor.robots"):
        assert asyncio.run(ask()) == ["connect-failed"] * 3
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("http://127.0.0.22:9 cannot be reached")


def test_a_timeout_disallows_everything(site: Site) -> None:
    site.robots(Reply(b"User-agent: *\nAllow: /\n", delay=3.0))
    cache = site.cache()
    assert verdicts(cache, site, "/a") == {"/a": False}
    with pytest.raises(RobotsDisallowed, match="could not be read \\(timeout\\)"):
        asyncio.run(cache.check(site.url("/a")))


def test_the_last_copy_stays_in_force_while_the_file_is_unreachable(site: Site) -> None:
    site.robots(
        text("User-agent: *\nDisallow: /private/\n"),
        text("busy\n", status=503),
        text("User-agent: *\nDisallow: /\n"),
    )
    cache = site.cache()
    paths = ("/news/a", "/private/a")
    assert verdicts(cache, site, *paths) == {"/news/a": True, "/private/a": False}
    site.clock.now += TTL + 1  # stale: read again, the site answers 503
    assert verdicts(cache, site, *paths) == {"/news/a": True, "/private/a": False}
    assert site.reads == 2
    site.clock.now += RETRY + 1  # asked again after the short retry, not after the ttl
    assert verdicts(cache, site, *paths) == {"/news/a": False, "/private/a": False}
    assert site.reads == 3


def test_one_read_serves_many_checks_until_the_ttl_passes(site: Site) -> None:
    site.robots(text("User-agent: *\nDisallow: /old/\n"), text("User-agent: *\nDisallow: /new/\n"))
    cache = site.cache()
    paths = [f"/old/{number}" for number in range(50)] + [f"/new/{number}" for number in range(50)]
    assert set(verdicts(cache, site, *paths[:50]).values()) == {False}
    assert set(verdicts(cache, site, *paths[50:]).values()) == {True}
    assert site.reads == 1
    site.clock.now += TTL - 1
    assert verdicts(cache, site, "/new/a") == {"/new/a": True}
    assert site.reads == 1
    site.clock.now += 2
    assert verdicts(cache, site, "/old/a", "/new/a") == {"/old/a": True, "/new/a": False}
    assert site.reads == 2


def test_concurrent_checks_on_one_site_share_one_read(site: Site) -> None:
    site.robots(Reply(b"User-agent: *\nDisallow: /private/\n", delay=0.3))
    cache = site.cache()

    async def many() -> list[bool]:
        paths = [f"/news/{n}" for n in range(20)] + [f"/private/{n}" for n in range(20)]
        return await asyncio.gather(*(allowed(cache, site.url(path)) for path in paths))

    assert asyncio.run(many()) == [True] * 20 + [False] * 20
    assert site.reads == 1


def test_crawl_delay_of_our_group_or_the_star_group(site: Site) -> None:
    site.robots(text("User-agent: *\nCrawl-delay: 10\n\nUser-agent: monitor\nCrawl-delay: 2.5\n"))
    ours, stranger = site.cache(), site.cache(user_agent="crawler/2.0")
    assert ours.crawl_delay(site.url("/a")) is None  # not read yet
    verdicts(ours, site, "/a")
    verdicts(stranger, site, "/a")
    assert ours.crawl_delay(site.url("/b")) == 2.5
    assert stranger.crawl_delay(site.url("/b")) == 10.0


def test_no_crawl_delay_when_the_file_gives_none(site: Site) -> None:
    site.robots(text("User-agent: *\nDisallow: /private/\n"))
    cache = site.cache()
    verdicts(cache, site, "/a")
    assert cache.crawl_delay(site.url("/a")) is None


def test_a_huge_robots_txt_is_parsed_up_to_the_cap_only(site: Site) -> None:
    padding = "".join(f"# comment line {n:06d} to pad the file out\n" for n in range(20_000))
    body = "User-agent: *\nDisallow: /early/\n" + padding + "Disallow: /late/\n"
    assert len(body) > 512 * 1024 + 200_000
    site.robots(text(body))
    cache = site.cache()
    assert verdicts(cache, site, "/early/a", "/late/a") == {"/early/a": False, "/late/a": True}
    with_room = site.cache(max_bytes=2 * 1024 * 1024)
    assert verdicts(with_room, site, "/late/a") == {"/late/a": False}


def test_a_cut_rule_is_dropped_not_read_shorter(site: Site) -> None:
    body = "User-agent: *\nDisallow: /keep/\nDisallow: /news-archive/\n"
    cap = body.index("/news-archive/") + len("/news")  # cuts the last rule to "Disallow: /news"
    site.robots(text(body))
    cache = site.cache(max_bytes=cap)
    assert verdicts(cache, site, "/keep/a", "/news/a") == {"/keep/a": False, "/news/a": True}


def test_a_redirected_robots_txt_is_followed(site: Site) -> None:
    site.robots(Redirect("/real-robots.txt", status=301))
    site.server.route("/real-robots.txt", text("User-agent: *\nDisallow: /private/\n"))
    assert verdicts(site.cache(), site, "/private/a", "/a") == {"/private/a": False, "/a": True}


def test_an_html_page_or_garbage_parses_to_no_rules(site: Site) -> None:
    site.robots(
        Reply(b"<html><body>Page not found</body></html>", content_type="text/html"),
    )
    assert verdicts(site.cache(), site, "/a", "/private/b") == {"/a": True, "/private/b": True}
    with LoopbackServer("127.0.0.22") as other:
        other.route(
            "/robots.txt", Reply(bytes(range(256)) * 64 + b"\nUser-agent: *\nDisallow: /x\n")
        )
        garbage = Site(other)
        assert verdicts(garbage.cache(), garbage, "/x/1", "/y") == {"/x/1": False, "/y": True}


def test_each_site_has_its_own_rules_and_the_cache_is_bounded(site: Site) -> None:
    site.robots(text("User-agent: *\nDisallow: /a/\n"))
    with LoopbackServer("127.0.0.22") as second_server, LoopbackServer("127.0.0.21") as third:
        second_server.route("/robots.txt", text("User-agent: *\nDisallow: /b/\n"))
        third.route("/robots.txt", text(""))  # same address, another port: another site
        second, other_port = Site(second_server, site.clock), Site(third, site.clock)
        cache = site.cache(max_hosts=2)
        assert verdicts(cache, site, "/a/1", "/b/1") == {"/a/1": False, "/b/1": True}
        assert verdicts(cache, second, "/a/1", "/b/1") == {"/a/1": True, "/b/1": False}
        assert verdicts(cache, other_port, "/a/1", "/b/1") == {"/a/1": True, "/b/1": True}
        assert (site.reads, second.reads, other_port.reads) == (1, 1, 1)
        # Three sites in a cache of two: the least recently used one was dropped.
        assert cache.crawl_delay(site.url("/")) is None
        assert verdicts(cache, site, "/a/1") == {"/a/1": False}
        assert verdicts(cache, other_port, "/a/1") == {"/a/1": True}
        assert (site.reads, second.reads, other_port.reads) == (2, 1, 1)


def test_urls_without_a_robots_txt_are_allowed_without_a_read(site: Site) -> None:
    cache = site.cache()

    async def ask() -> list[bool]:
        urls = ["mailto:desk@example.org", "ftp://127.0.0.21/a", "http:///no-host", "not a url"]
        return [await allowed(cache, url) for url in urls]

    assert asyncio.run(ask()) == [True] * 4
    assert site.reads == 0


def test_a_user_agent_without_a_product_token_is_refused() -> None:
    with pytest.raises(ValueError, match="product token"):
        RobotsCache(fetch, user_agent="/1.0", ttl=TTL)
