"""fetch: the HTTP edge, against real loopback servers that misbehave on purpose (no mocks).

Most tests drive the async Fetcher through `SyncFetcher`, one event loop kept for the fetcher's
life (so kept-alive connections are reused across calls, as in the daemon).
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import shutil
import socket
import time
import tracemalloc
import zlib
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from monitor import USER_AGENT
from monitor.errors import (
    ConnectFailed,
    FetchError,
    FetchTimeout,
    HTTPStatus,
    RefusedPrivate,
    RefusedURL,
    TooLarge,
    TooManyRedirects,
)
from monitor.fetch.client import Fetched, Fetcher, FetchLimits
from monitor.settings import HttpSettings
from tests.httpserver import (
    FIXED_LAST_MODIFIED,
    Drop,
    Endless,
    LoopbackServer,
    Redirect,
    Reply,
    Trickle,
    gzip_bomb,
    self_signed_tls,
)

# Small limits keep the slow cases fast; loopback is private, so tests opt in to it.
LIMITS = FetchLimits(
    connect_timeout=2.0,
    read_timeout=2.0,
    deadline=2.0,
    max_bytes=1024 * 1024,
    max_redirects=3,
    allow_private_networks=True,
)
SLACK = 1.5  # seconds granted past a deadline: generous, the bound is what is tested
# For the cases that wait out the deadline itself: a read timeout well above it.
SHORT_DEADLINE = dataclasses.replace(LIMITS, deadline=1.0)
T = TypeVar("T")


class SyncFetcher:
    """A Fetcher and the event loop it runs on, called like a plain function."""

    def __init__(self, limits: FetchLimits) -> None:
        self._loop = asyncio.new_event_loop()
        self.fetcher = Fetcher(limits)

    def __enter__(self) -> SyncFetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.run(self.fetcher.close())
        self._loop.close()

    def run(self, work: Coroutine[object, object, T]) -> T:
        return self._loop.run_until_complete(work)

    def get(self, url: str, **validators_and_cap: object) -> Fetched:
        return self.run(self.fetcher.get(url, **validators_and_cap))  # type: ignore[arg-type]


@pytest.fixture
def server() -> Iterator[LoopbackServer]:
    with LoopbackServer("127.0.0.2") as started:
        yield started


@pytest.fixture
def fetcher() -> Iterator[SyncFetcher]:
    with SyncFetcher(LIMITS) as client:
        yield client


# --- plain answers -------------------------------------------------------------------------


def test_200_returns_body_headers_and_validators(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    reply = Reply(
        b"<rss/>", content_type="application/rss+xml", headers={"X-Extra": "yes"}, etag='"v1"'
    )
    server.route("/feed.xml", reply)
    fetched = fetcher.get(server.url("/feed.xml"))
    assert isinstance(fetched, Fetched)
    assert fetched.status == 200 and not fetched.not_modified
    assert fetched.url == server.url("/feed.xml")
    assert fetched.content == b"<rss/>"
    assert fetched.headers["content-type"] == "application/rss+xml"
    assert fetched.headers["x-extra"] == "yes"
    assert all(key == key.lower() for key in fetched.headers)
    assert fetched.etag == '"v1"' and fetched.last_modified is None
    assert not fetched.redirected_permanently


def test_sends_user_agent_and_accept_encoding(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/", Reply(b"ok"))
    fetcher.get(server.url("/"))
    seen = server.requests("/")[0].headers
    assert seen["user-agent"] == USER_AGENT
    assert seen["accept-encoding"] == "gzip, deflate"
    assert "if-none-match" not in seen and "if-modified-since" not in seen


def test_connections_are_reused(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/a", Reply(b"a"))
    server.route("/moved", Redirect("/a"))
    fetcher.get(server.url("/a"))
    fetcher.get(server.url("/moved"))
    fetcher.get(server.url("/a"))
    assert server.connections == 1


# --- conditional GET -----------------------------------------------------------------------


def test_etag_is_sent_and_304_returned(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/feed", Reply(b"<rss>1</rss>", conditional=True))
    first = fetcher.get(server.url("/feed"))
    assert first.status == 200 and first.etag

    again = fetcher.get(server.url("/feed"), etag=first.etag)
    assert again.status == 304 and again.not_modified
    assert again.content == b""
    assert again.etag == first.etag
    assert [r.headers.get("if-none-match") for r in server.requests("/feed")] == [None, first.etag]


def test_last_modified_is_sent_and_304_returned(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/feed", Reply(b"<rss/>", last_modified=FIXED_LAST_MODIFIED))
    first = fetcher.get(server.url("/feed"))
    assert first.last_modified == FIXED_LAST_MODIFIED

    again = fetcher.get(server.url("/feed"), last_modified=first.last_modified)
    assert again.not_modified and again.content == b""
    assert again.last_modified == FIXED_LAST_MODIFIED
    assert server.requests("/feed")[-1].headers["if-modified-since"] == FIXED_LAST_MODIFIED


def test_stale_validators_get_the_new_body(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/feed", Reply(b"<rss>2</rss>", conditional=True))
    fetched = fetcher.get(server.url("/feed"), etag='"old"', last_modified=FIXED_LAST_MODIFIED)
    assert fetched.status == 200 and fetched.content == b"<rss>2</rss>"
    seen = server.requests("/feed")[0].headers
    assert seen["if-none-match"] == '"old"' and seen["if-modified-since"] == FIXED_LAST_MODIFIED


def test_304_without_validators_keeps_the_ones_sent(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/feed", Reply(status=304))
    fetched = fetcher.get(server.url("/feed"), etag='"e"', last_modified=FIXED_LAST_MODIFIED)
    assert fetched.not_modified
    assert (fetched.etag, fetched.last_modified) == ('"e"', FIXED_LAST_MODIFIED)


def test_a_validator_that_would_inject_a_header_is_a_fetch_error(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/feed", Reply(b"<rss/>"))
    with pytest.raises(FetchError, match="could not be sent") as caught:
        fetcher.get(server.url("/feed"), etag='"v1"\r\nX-Injected: yes')
    assert caught.value.reason == "fetch-failed"
    assert server.requests("/feed") == []


# --- error statuses ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 410, 403, 500, 503])
def test_error_status_raises_http_status(
    server: LoopbackServer, fetcher: SyncFetcher, status: int
) -> None:
    server.route("/x", Reply(b"error page", status=status))
    with pytest.raises(HTTPStatus) as caught:
        fetcher.get(server.url("/x"))
    assert caught.value.status == status
    assert caught.value.reason == f"http-{status}"
    assert caught.value.retry_after is None
    assert server.url("/x") in caught.value.message


def test_429_carries_retry_after(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/x", Reply(status=429, headers={"Retry-After": "120"}))
    with pytest.raises(HTTPStatus) as caught:
        fetcher.get(server.url("/x"))
    assert (caught.value.status, caught.value.retry_after) == (429, "120")
    assert "slow down" in caught.value.message


def test_error_status_leaves_the_connection_usable(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/gone", Reply(b"x" * 1000, status=404))
    server.route("/ok", Reply(b"ok"))
    with pytest.raises(HTTPStatus):
        fetcher.get(server.url("/gone"))
    assert fetcher.get(server.url("/ok")).content == b"ok"
    assert server.connections == 1


# --- redirects -----------------------------------------------------------------------------


def test_redirect_is_followed_to_the_final_url(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/old", Redirect("/new", status=302))
    server.route("/new", Reply(b"here"))
    fetched = fetcher.get(server.url("/old"))
    assert fetched.content == b"here"
    assert fetched.url == server.url("/new")
    assert not fetched.redirected_permanently
    assert len(server.requests("/old")) == len(server.requests("/new")) == 1


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_is_flagged(
    server: LoopbackServer, fetcher: SyncFetcher, status: int
) -> None:
    server.route("/old", Redirect("/temp", status=status))
    server.route("/temp", Redirect("/new", status=307))
    server.route("/new", Reply(b"here"))
    fetched = fetcher.get(server.url("/old"))
    assert fetched.url == server.url("/new")
    assert fetched.redirected_permanently


def test_redirect_to_another_server(fetcher: SyncFetcher) -> None:
    with LoopbackServer("127.0.0.2") as first, LoopbackServer("127.0.0.3") as second:
        second.route("/feed", Reply(b"moved"))
        first.route("/feed", Redirect(second.url("/feed"), status=301))
        fetched = fetcher.get(first.url("/feed"))
    assert (fetched.url, fetched.content) == (second.url("/feed"), b"moved")
    assert fetched.redirected_permanently


def test_redirect_loop_raises_too_many_redirects(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/a", Redirect("/b"))
    server.route("/b", Redirect("/a"))
    with pytest.raises(TooManyRedirects) as caught:
        fetcher.get(server.url("/a"))
    assert caught.value.reason == "too-many-redirects"
    assert server.url("/a") in caught.value.message
    hops = len(server.requests("/a")) + len(server.requests("/b"))
    assert hops == LIMITS.max_redirects + 1


@pytest.mark.parametrize(("redirects", "allowed"), [(3, True), (4, False)])
def test_max_redirects_is_the_number_followed(
    server: LoopbackServer, fetcher: SyncFetcher, redirects: int, allowed: bool
) -> None:
    for hop in range(redirects):
        server.route(f"/{hop}", Redirect(f"/{hop + 1}"))
    server.route(f"/{redirects}", Reply(b"end"))
    if allowed:
        assert fetcher.get(server.url("/0")).content == b"end"
    else:
        with pytest.raises(TooManyRedirects):
            fetcher.get(server.url("/0"))


def test_redirect_to_another_scheme_is_refused(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/feed", Redirect("file:///etc/passwd"))
    with pytest.raises(RefusedURL, match="redirected from"):
        fetcher.get(server.url("/feed"))


# --- size and time limits ------------------------------------------------------------------


def test_endless_body_stops_at_max_bytes(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/endless", Endless())
    started = time.monotonic()
    with pytest.raises(TooLarge) as caught:
        fetcher.get(server.url("/endless"))
    assert caught.value.reason == "too-large"
    assert time.monotonic() - started < LIMITS.deadline


def test_max_bytes_can_be_set_per_call(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/page", Reply(b"x" * 5000))
    assert len(fetcher.get(server.url("/page"), max_bytes=5000).content) == 5000
    with pytest.raises(TooLarge):
        fetcher.get(server.url("/page"), max_bytes=4999)


def test_limits_come_from_the_http_settings(server: LoopbackServer) -> None:
    http = HttpSettings(connect_timeout="3s", read_timeout=4, deadline="1m", max_redirects=2,
                        max_page_bytes="4 KiB", max_feed_bytes=2048,
                        allow_private_networks=True)
    limits = FetchLimits.from_settings(http)
    assert limits == FetchLimits(connect_timeout=3.0, read_timeout=4.0, deadline=60.0,
                                 max_bytes=4096, max_redirects=2, allow_private_networks=True)
    server.route("/page", Reply(b"x" * 4096))
    server.route("/big", Reply(b"x" * 4097))
    with SyncFetcher(limits) as fetcher:
        assert len(fetcher.get(server.url("/page")).content) == 4096
        with pytest.raises(TooLarge):
            fetcher.get(server.url("/big"))
    default = FetchLimits.from_settings(HttpSettings())  # private networks refused
    with SyncFetcher(default) as guarded, pytest.raises(RefusedPrivate):
        guarded.get(server.url("/page"))


def test_declared_length_over_the_cap_is_refused(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/big", Reply(b"x" * (LIMITS.max_bytes + 1)))
    with pytest.raises(TooLarge):
        fetcher.get(server.url("/big"))


def test_endless_trickle_stops_at_the_deadline(server: LoopbackServer) -> None:
    server.route("/slow", Trickle(interval=0.3))
    started = time.monotonic()
    with SyncFetcher(SHORT_DEADLINE) as fetcher, pytest.raises(FetchTimeout) as caught:
        fetcher.get(server.url("/slow"))
    took = time.monotonic() - started
    assert SHORT_DEADLINE.deadline - 0.1 <= took < SHORT_DEADLINE.deadline + SLACK
    assert caught.value.reason == "timeout"
    assert "overall deadline" in caught.value.message
    assert server.url("/slow") in caught.value.message


def test_silence_longer_than_read_timeout(server: LoopbackServer) -> None:
    server.route("/late", Reply(b"late", delay=5.0))
    limits = FetchLimits(read_timeout=0.5, deadline=10.0, allow_private_networks=True)
    started = time.monotonic()
    with SyncFetcher(limits) as fetcher, pytest.raises(FetchTimeout) as caught:
        fetcher.get(server.url("/late"))
    assert time.monotonic() - started < 0.5 + SLACK
    assert "went silent for 0.5 s" in caught.value.message


def test_deadline_covers_all_redirect_hops(server: LoopbackServer) -> None:
    # Each hop answers well within the read timeout, but together they pass the deadline.
    server.route("/0", Redirect("/1", delay=0.4))
    server.route("/1", Redirect("/2", delay=0.4))
    server.route("/2", Redirect("/3", delay=0.4))
    server.route("/3", Reply(b"never", delay=0.4))
    started = time.monotonic()
    with SyncFetcher(SHORT_DEADLINE) as fetcher, \
            pytest.raises(FetchTimeout, match="overall deadline"):
        fetcher.get(server.url("/0"))
    assert time.monotonic() - started < SHORT_DEADLINE.deadline + SLACK


# --- content encodings ---------------------------------------------------------------------


def test_gzip_body_is_decoded(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    body = b"<rss>" + b"news " * 2000 + b"</rss>"
    server.route("/feed", Reply(body, gzip=True))
    fetched = fetcher.get(server.url("/feed"))
    assert fetched.content == body
    assert fetched.headers["content-encoding"] == "gzip"


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_body_is_decoded(server: LoopbackServer, fetcher: SyncFetcher, wbits: int) -> None:
    body = b"article text " * 500
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    encoded = compressor.compress(body) + compressor.flush()
    server.route("/page", Reply(encoded, headers={"Content-Encoding": "deflate"}))
    assert fetcher.get(server.url("/page")).content == body


def test_multi_member_gzip_is_decoded_whole(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    encoded = gzip.compress(b"first ", mtime=0) + gzip.compress(b"second", mtime=0)
    server.route("/feed", Reply(encoded, headers={"Content-Encoding": "gzip"}))
    assert fetcher.get(server.url("/feed")).content == b"first second"


def test_stacked_encodings_are_undone_last_first(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    body = b"<rss>twice</rss>"
    encoded = gzip.compress(zlib.compress(body), mtime=0)
    server.route("/feed", Reply(encoded, headers={"Content-Encoding": "deflate, gzip"}))
    assert fetcher.get(server.url("/feed")).content == body


def test_an_encoding_not_asked_for_is_a_fetch_error(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    server.route("/feed", Reply(b"\x0b\x02\x80", headers={"Content-Encoding": "br"}))
    with pytest.raises(FetchError, match="did not ask for"):
        fetcher.get(server.url("/feed"))


def test_corrupt_gzip_is_a_fetch_error(server: LoopbackServer, fetcher: SyncFetcher) -> None:
    server.route("/feed", Reply(b"\x1f\x8bnot really gzip", headers={"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="corrupt"):
        fetcher.get(server.url("/feed"))


def test_gzip_bomb_stops_at_the_cap_in_small_memory(
    server: LoopbackServer, fetcher: SyncFetcher
) -> None:
    bomb = gzip_bomb(128 * 1024 * 1024)
    assert len(bomb) < 1024 * 1024
    server.route("/bomb", Reply(bomb, headers={"Content-Encoding": "gzip"}))
    tracemalloc.start()
    try:
        with pytest.raises(TooLarge):
            fetcher.get(server.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Inflated whole it would be 128 MB; bounded, it is the 1 MB cap plus a few pieces.
    assert peak < 8 * LIMITS.max_bytes


# --- broken connections --------------------------------------------------------------------


@pytest.mark.parametrize(
    "drop",
    [Drop(), Drop(reset=True), Drop(partial=b"<rss><item>"), Drop(partial=b"<rss>", reset=True)],
    ids=["no-answer", "reset", "mid-body", "mid-body-reset"],
)
def test_dropped_connection_is_connect_failed(
    server: LoopbackServer, fetcher: SyncFetcher, drop: Drop
) -> None:
    server.route("/feed", drop)
    with pytest.raises(ConnectFailed) as caught:
        fetcher.get(server.url("/feed"))
    assert caught.value.reason == "connect-failed"
    assert server.url("/feed") in caught.value.message


def test_refused_port_is_connect_failed(fetcher: SyncFetcher) -> None:
    # A bound socket that never listens: connecting is refused, and no other test takes the port.
    with socket.socket() as unused:
        unused.bind(("127.0.0.2", 0))
        port = unused.getsockname()[1]
        with pytest.raises(ConnectFailed, match="could not connect"):
            fetcher.get(f"http://127.0.0.2:{port}/feed")


# --- refused URLs and addresses ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ftp://127.0.0.2/feed",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "/relative/feed.xml",
        "127.0.0.2/feed",
        "http:///no-host",
        "http://127.0.0.2:99999/",
        "http://[::1/",
        "http://127.1/",  # the system would read these three as 127.0.0.1
        "http://2130706433/",
        "http://0177.0.0.1/",
    ],
)
def test_unusable_urls_are_refused(fetcher: SyncFetcher, url: str) -> None:
    # Loopback hosts only, so that a URL wrongly let through never leaves this machine.
    with pytest.raises(RefusedURL) as caught:
        fetcher.get(url)
    assert caught.value.reason == "refused-url"
    assert "fix the URL" in caught.value.message


def test_loopback_is_refused_unless_private_networks_are_allowed(server: LoopbackServer) -> None:
    server.route("/feed", Reply(b"ok"))
    with SyncFetcher(FetchLimits()) as guarded, pytest.raises(RefusedPrivate) as caught:
        guarded.get(server.url("/feed"))
    assert caught.value.reason == "refused-private"
    assert "127.0.0.2 is a loopback address" in caught.value.message
    assert "allow_private_networks" in caught.value.message
    assert server.connections == 0  # refused before connecting, not after

    with SyncFetcher(FetchLimits(allow_private_networks=True)) as open_fetcher:
        assert open_fetcher.get(server.url("/feed")).content == b"ok"


def test_a_name_resolving_to_loopback_is_refused() -> None:
    # "localhost" is a DNS name, not an address: the check is on what it resolves to.
    with SyncFetcher(FetchLimits()) as guarded, pytest.raises(RefusedPrivate, match="resolves to"):
        guarded.get("http://localhost:9/feed")


def test_a_name_resolving_to_an_allowed_network_is_fetched() -> None:
    # The resolver keeps the allowed addresses of a name and the connection goes to them.
    limits = FetchLimits(allowed_networks=("127.0.0.1/32",))
    with LoopbackServer("127.0.0.1") as server, SyncFetcher(limits) as fetcher:
        server.route("/feed", Reply(b"inside"))
        assert fetcher.get(f"http://localhost:{server.port}/feed").content == b"inside"
        with pytest.raises(RefusedPrivate, match="127.0.0.2 is a loopback address"):
            fetcher.get(f"http://127.0.0.2:{server.port}/feed")


def test_ipv6_loopback_literal_is_refused() -> None:
    with SyncFetcher(FetchLimits()) as guarded, pytest.raises(RefusedPrivate, match="::1"):
        guarded.get("http://[::1]:9/feed")


def test_redirect_to_a_refused_address_is_refused_at_connect_time() -> None:
    # Only 127.0.0.2 is allowed: the first hop connects, the redirect to 127.0.0.3 must not.
    limits = FetchLimits(allowed_networks=("127.0.0.2/32",))
    with (
        LoopbackServer("127.0.0.2") as allowed,
        LoopbackServer("127.0.0.3") as internal,
        SyncFetcher(limits) as fetcher,
    ):
        internal.route("/admin", Reply(b"secret"))
        allowed.route("/feed", Redirect(internal.url("/admin")))
        with pytest.raises(RefusedPrivate) as caught:
            fetcher.get(allowed.url("/feed"))
        assert "127.0.0.3 is a loopback address" in caught.value.message
        assert f"redirected from {allowed.url('/feed')}" in caught.value.message
        assert len(allowed.requests("/feed")) == 1
        assert internal.connections == 0


# --- TLS -----------------------------------------------------------------------------------


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[LoopbackServer, Path]]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    context, cert = self_signed_tls(tmp_path, "localhost")
    with LoopbackServer("127.0.0.1", tls=context) as started:
        started.route("/feed", Reply(b"secure"))
        yield started, cert


def test_https_checks_the_certificate_against_the_host_name(
    tls_server: tuple[LoopbackServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The socket is connected to a checked IP address; the certificate must still be verified
    # against the URL's name (SNI and hostname check), here "localhost".
    server, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with SyncFetcher(LIMITS) as fetcher:
        fetched = fetcher.get(f"https://localhost:{server.port}/feed")
        assert fetched.content == b"secure"
        with pytest.raises(ConnectFailed, match="could not connect"):
            fetcher.get(f"https://127.0.0.1:{server.port}/feed")  # not the certificate's name


def test_untrusted_certificate_is_connect_failed(
    tls_server: tuple[LoopbackServer, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server, _ = tls_server
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with SyncFetcher(LIMITS) as fetcher, pytest.raises(ConnectFailed, match="CERTIFICATE_VERIFY"):
        fetcher.get(f"https://localhost:{server.port}/feed")
