"""The HTTP edge: get one URL's bytes within limits. Does network I/O (asyncio, aiohttp).

In: a URL, optional validators (ETag, Last-Modified) and FetchLimits. Out: Fetched (status 200, or
304 with no body); raises only the FetchError family of `monitor.errors`, never an aiohttp or
asyncio error: foreign errors are mapped in one place, `Fetcher._one_hop`.

How the limits hold:
- Addresses are checked at connect time: the connector resolves names through `connect`'s
  GuardedResolver, which drops the addresses `netguard` refuses; aiohttp skips resolvers for IP
  literals, so those are checked here on every hop. A DNS name pointing inside the network and
  a redirect to an internal host are refused alike, before any connection.
- Each hop runs under the overall deadline of its get() (redirects and body included, so a
  server trickling one byte at a time stops at it; `deadlines`: one timer for all the gets
  under way), and under aiohttp's connect and socket-read timeouts.
- Redirects are followed here, one hop at a time, so each hop is counted, checked and timed.
- The body is inflated (`inflate`: gzip, deflate) a bounded piece at a time and counted here
  after decoding, so a compression bomb stops at `max_bytes` without ever sitting whole in memory.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import aiohttp
from yarl import URL

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
from monitor.fetch.connect import AddressRefused, GuardedResolver, check_literal
from monitor.fetch.deadlines import TaskDeadline
from monitor.fetch.inflate import PIECE, BodyDecoder, content_codings
from monitor.fetch.netguard import AddressPolicy
from monitor.settings import HttpSettings

# Only what we inflate ourselves, with bounded output: brotli and zstd are not asked for.
ACCEPT_ENCODING = "gzip, deflate"
_REDIRECTS = frozenset((301, 302, 303, 307, 308))
_PERMANENT = frozenset((301, 308))


@dataclass(frozen=True)
class Fetched:
    """One successful answer. On 304 the validators are the ones still valid (sent or renewed)."""

    url: str  # final URL after redirects
    status: int  # 200, or 304 when not modified
    headers: Mapping[str, str]  # response headers, lower-case keys
    content: bytes  # decoded body, b"" on 304
    etag: str | None
    last_modified: str | None
    redirected_permanently: bool  # a 301/308 was followed on the way

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    deadline: float = 60.0  # overall wall-clock budget for one get(), redirects and body included
    max_bytes: int = 10 * 1024 * 1024  # cap on the DECODED body
    max_redirects: int = 5
    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()  # CIDR ranges allowed even when private

    @classmethod
    def from_settings(cls, http: HttpSettings) -> FetchLimits:
        """The limits of monitor.yaml's ``http`` section; the size cap is the page cap (a feed's
        get() asks for ``http.max_feed_bytes`` itself)."""
        return cls(connect_timeout=http.connect_timeout, read_timeout=http.read_timeout,
                   deadline=http.deadline, max_bytes=http.max_page_bytes,
                   max_redirects=http.max_redirects,
                   allow_private_networks=http.allow_private_networks)


class Fetcher:
    """One aiohttp ClientSession: connections are kept alive and reused per host, and get() may
    run in many tasks at once. Use in one event loop, as an async context manager or with close().
    """

    def __init__(self, limits: FetchLimits, *, max_connections: int = 100) -> None:
        """`max_connections` caps open connections in all (no cap per host here: `hostgate`
        does politeness)."""
        self._limits = limits
        self._policy = AddressPolicy(limits.allow_private_networks, limits.allowed_networks)
        self._max_connections = max_connections
        # Made here, not at aiohttp's import, so SSL_CERT_FILE / SSL_CERT_DIR set by then count.
        self._ssl = ssl.create_default_context()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp needs a running event loop for it."""
        if self._session is None:
            limits = self._limits
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                resolver=GuardedResolver(self._policy),
                use_dns_cache=True,
                ttl_dns_cache=300,
                enable_cleanup_closed=True,
                ssl=self._ssl,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": USER_AGENT, "Accept-Encoding": ACCEPT_ENCODING},
                # connect: waiting for a pooled connection, DNS, TCP and TLS together.
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=limits.connect_timeout,
                    sock_connect=limits.connect_timeout,
                    sock_read=limits.read_timeout,
                ),
                cookie_jar=aiohttp.DummyCookieJar(),  # no cookie carried from one feed to another
                trust_env=False,  # no proxy or .netrc from the environment: a proxy would bypass us
                auto_decompress=False,  # decoded here, bounded (`inflate`)
            )
        return self._session

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> Fetched:
        """GET `url`, following redirects; conditional when validators are given."""
        session = self._open()
        cap = self._limits.max_bytes if max_bytes is None else max_bytes
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        (hop, hop_text), where = _checked_start(url), url
        permanent = False
        budget = TaskDeadline(self._limits.deadline)
        try:
            for _ in range(self._limits.max_redirects + 1):
                answer = await self._one_hop(session, hop, where, headers, cap, budget)
                if answer.location is None:
                    # On 304 the validators sent stay valid unless the answer renews them.
                    kept = (etag, last_modified) if answer.status == 304 else (None, None)
                    return Fetched(
                        url=hop_text,
                        status=answer.status,
                        headers=answer.headers,
                        content=answer.content,
                        etag=answer.headers.get("etag") or kept[0],
                        last_modified=answer.headers.get("last-modified") or kept[1],
                        redirected_permanently=permanent,
                    )
                permanent = permanent or answer.status in _PERMANENT
                hop = _checked_url(answer.location, url, base=hop)
                hop_text = str(hop)
                where = f"{hop_text} (redirected from {url})"
        finally:
            budget.cancel()
        raise TooManyRedirects(
            f"{url}: more than {self._limits.max_redirects} redirects (the last to {hop}); "
            "the URL probably loops, check it in a browser and fix it"
        )

    async def _one_hop(
        self,
        session: aiohttp.ClientSession,
        hop: URL,
        where: str,
        headers: dict[str, str],
        cap: int,
        budget: TaskDeadline,
    ) -> _Answer:
        """One request and its answer by the deadline; every foreign error is mapped here."""
        try:
            async with budget:
                if _looks_like_ip(hop.raw_host):
                    check_literal(self._policy, hop.raw_host)
                return await _exchange(session, hop, where, headers, cap)
        except AddressRefused as exc:
            raise RefusedPrivate(
                f"{where}: {exc.host} {exc.refused_text()}, which monitor refuses; "
                "set http.allow_private_networks: true in monitor.yaml only if this site is "
                "meant to be on a private network"
            ) from exc
        except TimeoutError as exc:  # aiohttp's own timeouts are TimeoutErrors too
            if budget.expired:
                why = f"no complete answer within {self._limits.deadline:g} s (overall deadline)"
            elif isinstance(exc, aiohttp.ConnectionTimeoutError):
                why = f"no connection within {self._limits.connect_timeout:g} s"
            else:
                why = f"the site went silent for {self._limits.read_timeout:g} s"
            raise FetchTimeout(
                f"{where}: {why}; the site may be down or slow, it will be retried"
            ) from exc
        except aiohttp.InvalidURL as exc:
            raise RefusedURL(f"{where}: not a usable URL ({exc}); fix the URL") from exc
        except aiohttp.ClientConnectorError as exc:  # DNS, refused, TLS handshake, certificate
            raise ConnectFailed(
                f"{where}: could not connect ({exc}); check the host name, "
                "or the site may be down, it will be retried"
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            raise ConnectFailed(
                f"{where}: the connection broke ({exc or type(exc).__name__}); "
                "the site may be overloaded, it will be retried"
            ) from exc
        except aiohttp.ClientError as exc:  # a malformed answer, mostly
            raise FetchError(f"{where}: the request failed ({exc}); it will be retried") from exc
        except ValueError as exc:  # aiohttp refusing to send a header, e.g. a validator with CR/LF
            raise FetchError(
                f"{where}: the request could not be sent ({exc}); check the URL and the feed's "
                "stored ETag and Last-Modified"
            ) from exc


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    content: bytes
    location: str | None  # set when the answer is a redirect to follow


async def _exchange(
    session: aiohttp.ClientSession, hop: URL, where: str, headers: dict[str, str], cap: int
) -> _Answer:
    async with session.get(hop, headers=headers, allow_redirects=False) as response:
        status = response.status
        answer_headers = _lower_case(response.headers)
        location = answer_headers.get("location") if status in _REDIRECTS else None
        if location is not None or not 200 <= status < 300:
            if not response.content.at_eof():  # a 304 has no body: nothing to read nor wait for
                await _finish_short_body(response)
            if location is not None or status == 304:
                return _Answer(status, answer_headers, b"", location)
            raise _status_error(where, status, response.reason or "", answer_headers)
        content = await _read_capped(response, answer_headers, cap, where)
        return _Answer(status, answer_headers, content, None)


def _lower_case(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case keys; a repeated header's values joined by commas (RFC 9110 5.3)."""
    lowered: dict[str, str] = {}
    for key, value in headers.items():
        key = key.lower()
        lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
    return lowered


@functools.lru_cache(maxsize=16384)
def _checked_start(url: str) -> tuple[URL, str]:
    """`_checked_url` of a URL asked for (not a redirect's), and its text: feed URLs come back
    every poll, and a parsed URL is immutable, so they are checked (and written out) once."""
    checked = _checked_url(url, url)
    return checked, str(checked)


def _checked_url(text: str, requested: str, base: URL | None = None) -> URL:
    """`text` (a redirect's Location, when `base` is the URL that sent it) parsed, or
    RefusedURL: only absolute http(s) URLs with a host and a real port are fetched."""
    where = text if base is None else f"{text} (redirected from {requested})"
    try:
        url = URL(text) if base is None else base.join(URL(text))
        port = url.port  # yarl checks the range only when asked
    except (ValueError, TypeError) as exc:
        raise RefusedURL(f"{where}: not a usable URL ({exc}); fix the URL") from exc
    if url.scheme not in ("http", "https"):
        raise RefusedURL(
            f"{where}: only http and https URLs are fetched, not {url.scheme or 'a relative'!r} "
            "ones; fix the URL"
        )
    if not url.raw_host:
        raise RefusedURL(f"{where}: the URL has no host name; fix the URL")
    if port is None or not 0 < port < 65536:
        raise RefusedURL(f"{where}: port {port} does not exist; fix the URL")
    if _looks_like_ip(url.raw_host) and ":" not in url.raw_host and not _dotted_quad(url.raw_host):
        # The system would read 127.1, 2130706433 or 0177.0.0.1 as 127.0.0.1: refused as typos.
        raise RefusedURL(f"{where}: {url.raw_host} is not a dotted IPv4 address; fix the URL")
    return url


def _looks_like_ip(host: str | None) -> bool:
    """What aiohttp treats as an IP literal (and so never hands to the resolver)."""
    return bool(host) and (":" in host or host.replace(".", "").isdigit())


def _dotted_quad(host: str) -> bool:
    """Four decimal numbers without leading zeros (which some systems read as octal)."""
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _status_error(where: str, status: int, phrase: str, headers: Mapping[str, str]) -> HTTPStatus:
    retry_after = headers.get("retry-after")
    if status == 429:
        advice = f"the site asks to slow down (Retry-After: {retry_after or 'not given'})"
    elif status >= 500:
        advice = "a server error on the site; it will be retried"
    elif status in (401, 403):
        advice = "the site refuses monitor; check the URL or whether it blocks robots"
    elif status in (404, 410):
        advice = "check the URL; the feed or page may have moved or gone"
    else:
        advice = "check the URL"
    return HTTPStatus(
        f"{where}: the site answered {status} {phrase}; {advice}",
        status=status,
        retry_after=retry_after,
    )


async def _finish_short_body(response: aiohttp.ClientResponse) -> None:
    """Read the body of a redirect, 304 or error to its end when short, so that the connection
    can be reused; a long or broken one is abandoned, and aiohttp closes the connection with it."""
    received = 0
    try:
        while chunk := await response.content.readany():
            received += len(chunk)
            if received > PIECE:
                return
    except (aiohttp.ClientError, OSError):
        return  # the status already says what happened; the body does not matter


async def _read_capped(
    response: aiohttp.ClientResponse, headers: dict[str, str], cap: int, where: str
) -> bytes:
    """The decoded body, or TooLarge as soon as more than `cap` decoded bytes have come."""
    codings = content_codings(headers.get("content-encoding", ""))
    declared = headers.get("content-length", "")
    too_large = (
        f"{where}: the body is over {cap:,} bytes (decoded); "
        "if the site is right to be this big, raise the limit for it"
    )
    if not codings and declared.isdigit() and int(declared) > cap:
        raise TooLarge(too_large)
    body = bytearray()
    decoder = BodyDecoder(codings, where)
    async for chunk in response.content.iter_any():
        _append_capped(body, decoder.feed(chunk), cap, too_large)
    _append_capped(body, decoder.finish(), cap, too_large)
    return bytes(body)


def _append_capped(body: bytearray, pieces: Iterator[bytes], cap: int, too_large: str) -> None:
    for piece in pieces:
        body += piece
        if len(body) > cap:
            raise TooLarge(too_large)


def fetch_once(url: str, limits: FetchLimits) -> Fetched:
    """One get() on a fetcher of its own, for commands that are not in an event loop."""

    async def fetch() -> Fetched:
        async with Fetcher(limits, max_connections=1) as fetcher:
            return await fetcher.get(url)

    return asyncio.run(fetch())
