"""The HTTP edge: get one URL's bytes within limits. Does network I/O.

In: a URL, optional validators (ETag, Last-Modified) and FetchLimits. Out: Fetched (status 200, or
304 with no body); raises only the FetchError family of `monitor.errors`, never an httpx error.

How the limits hold:
- Addresses are checked at connect time: the network backend under httpx (`connect`) resolves
  the host itself, asks `netguard` about every address, and connects only to allowed ones. A DNS
  name pointing inside the network and a redirect to an internal host are refused alike.
- The overall deadline is enforced at the socket (`connect`): every connect, TLS handshake, read
  and write gets at most the time left, so a server trickling one byte at a time still stops at
  the deadline.
- Redirects are followed here, one hop at a time, so each hop is counted, checked and timed.
- The body is inflated (`inflate`: gzip, deflate) a bounded piece at a time and counted here
  after decoding, so a compression bomb stops at `max_bytes` without ever sitting whole in memory.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import httpx

from monitor import USER_AGENT
from monitor.connect import AddressRefused, current_deadline, guarded_transport
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
from monitor.inflate import PIECE, inflate
from monitor.netguard import AddressPolicy

# Only what we inflate ourselves, with bounded output: brotli and zstd are not asked for.
ACCEPT_ENCODING = "gzip, deflate"
_RAW_CHUNK = 16 * 1024  # compressed bytes handed to the inflater at once
_PERMANENT = (301, 308)


@dataclass(frozen=True)
class Fetched:
    """One successful answer. On 304 the validators are the ones still valid (sent or renewed)."""

    url: str  # final URL after redirects
    status: int  # 200, or 304 when not modified
    headers: Mapping[str, str]  # response headers, lower-case keys
    content: bytes  # decoded body, b"" on 304
    etag: str | None
    last_modified: str | None
    elapsed: float  # seconds, redirects and body included
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


class Fetcher:
    """One shared httpx.Client: connections are reused, and get() may be called from several
    threads at once. Use as a context manager, or call close()."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        user_agent: str = USER_AGENT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`transport` replaces the guarded one, and with it the address check and the
        socket-level deadline: for tests that need no network only."""
        self._limits = limits
        if transport is None:
            policy = AddressPolicy(limits.allow_private_networks, limits.allowed_networks)
            transport = guarded_transport(policy)
        self._client = httpx.Client(
            transport=transport,
            follow_redirects=False,
            trust_env=False,  # no proxy or .netrc from the environment: a proxy would bypass us
            headers={"User-Agent": user_agent, "Accept-Encoding": ACCEPT_ENCODING},
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        max_bytes: int | None = None,
    ) -> Fetched:
        """GET `url`, following redirects; conditional when validators are given."""
        started = time.monotonic()
        deadline = started + self._limits.deadline
        cap = self._limits.max_bytes if max_bytes is None else max_bytes
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        token = current_deadline.set(deadline)
        try:
            hop = _checked_url(url, url)
            permanent = False
            for _ in range(self._limits.max_redirects + 1):
                answer = self._one_hop(url, hop, headers, cap, deadline)
                if answer.location is None:
                    # On 304 the validators sent stay valid unless the answer renews them.
                    kept = (etag, last_modified) if answer.status == 304 else (None, None)
                    return Fetched(
                        url=str(hop),
                        status=answer.status,
                        headers=answer.headers,
                        content=answer.content,
                        etag=answer.headers.get("etag") or kept[0],
                        last_modified=answer.headers.get("last-modified") or kept[1],
                        elapsed=time.monotonic() - started,
                        redirected_permanently=permanent,
                    )
                permanent = permanent or answer.status in _PERMANENT
                hop = _checked_url(answer.location, url, base=hop)
        finally:
            current_deadline.reset(token)
        raise TooManyRedirects(
            f"{url}: more than {self._limits.max_redirects} redirects (the last to {hop}); "
            "the URL probably loops, check it in a browser and fix it"
        )

    def _one_hop(
        self, url: str, hop: httpx.URL, headers: dict[str, str], cap: int, deadline: float
    ) -> _Answer:
        """One request and its answer; every foreign error is mapped here, the one boundary."""
        where = f"{hop}" if str(hop) == url else f"{hop} (redirected from {url})"
        try:
            timeout = self._timeout(deadline)
            with self._client.stream("GET", hop, headers=headers, timeout=timeout) as r:
                status = r.status_code
                answer_headers = {key.lower(): value for key, value in r.headers.items()}
                if r.has_redirect_location or not 200 <= status < 300:
                    _finish_short_body(r)
                if r.has_redirect_location:
                    return _Answer(status, answer_headers, b"", r.headers["location"])
                if status == 304:
                    return _Answer(status, answer_headers, b"", None)
                if not 200 <= status < 300:
                    raise _status_error(where, status, r.reason_phrase, answer_headers)
                content = _read_capped(r, cap, deadline, where)
                return _Answer(status, answer_headers, content, None)
        except AddressRefused as exc:
            raise RefusedPrivate(
                f"{where}: {exc.host} {exc.refused_text()}, which monitor refuses; "
                "set http.allow_private_networks: true in monitor.yaml only if this site is "
                "meant to be on a private network"
            ) from exc
        except httpx.TimeoutException as exc:
            if time.monotonic() >= deadline - 0.05:
                why = f"no complete answer within {self._limits.deadline:g} s (overall deadline)"
            elif isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
                why = f"no connection within {self._limits.connect_timeout:g} s"
            else:
                why = f"the site went silent for {self._limits.read_timeout:g} s"
            raise FetchTimeout(
                f"{where}: {why}; the site may be down or slow, it will be retried"
            ) from exc
        except httpx.UnsupportedProtocol as exc:
            raise RefusedURL(f"{where}: {exc}; only http and https URLs can be fetched") from exc
        except httpx.ConnectError as exc:
            raise ConnectFailed(
                f"{where}: could not connect ({exc}); check the host name, "
                "or the site may be down, it will be retried"
            ) from exc
        except httpx.TransportError as exc:
            raise ConnectFailed(
                f"{where}: the connection broke ({exc or type(exc).__name__}); "
                "the site may be overloaded, it will be retried"
            ) from exc
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as exc:
            raise FetchError(f"{where}: the request failed ({exc}); it will be retried") from exc

    def _timeout(self, deadline: float) -> httpx.Timeout:
        left = deadline - time.monotonic()
        if left <= 0:
            raise httpx.PoolTimeout("overall deadline passed between redirects")
        # The socket layer clamps connect/read/write to the time left; waiting for a pooled
        # connection happens above it, so clamp that here.
        return httpx.Timeout(
            connect=self._limits.connect_timeout,
            read=self._limits.read_timeout,
            write=self._limits.read_timeout,
            pool=min(self._limits.connect_timeout, left),
        )


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: dict[str, str]
    content: bytes
    location: str | None  # set when the answer is a redirect to follow


def _checked_url(text: str, requested: str, base: httpx.URL | None = None) -> httpx.URL:
    """`text` (a redirect's Location, when `base` is the URL that sent it) parsed, or
    RefusedURL: only absolute http(s) URLs with a host are fetched."""
    where = text if base is None else f"{text} (redirected from {requested})"
    try:
        url = httpx.URL(text) if base is None else base.join(text)
    except (httpx.InvalidURL, TypeError) as exc:
        raise RefusedURL(f"{where}: not a usable URL ({exc}); fix the URL") from exc
    if url.scheme not in ("http", "https"):
        raise RefusedURL(
            f"{where}: only http and https URLs are fetched, not {url.scheme or 'a relative'!r} "
            "ones; fix the URL"
        )
    if not url.host:
        raise RefusedURL(f"{where}: the URL has no host name; fix the URL")
    if url.port is not None and not 0 < url.port < 65536:
        raise RefusedURL(f"{where}: port {url.port} does not exist; fix the URL")
    return url


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


def _finish_short_body(response: httpx.Response) -> None:
    """Read the body of a redirect, 304 or error to its end when short, so that the connection
    can be reused; a long or broken one is abandoned and the connection closed with it."""
    received = 0
    try:
        for chunk in response.iter_raw():
            received += len(chunk)
            if received > PIECE:
                return
    except httpx.HTTPError:
        return  # the status already says what happened; the body does not matter


def _read_capped(response: httpx.Response, cap: int, deadline: float, where: str) -> bytes:
    """The decoded body, or TooLarge as soon as more than `cap` decoded bytes have come."""
    encodings = [
        value.strip().lower()
        for value in response.headers.get("content-encoding", "").split(",")
        if value.strip() and value.strip().lower() != "identity"
    ]
    declared = response.headers.get("content-length", "")
    too_large = (
        f"{where}: the body is over {cap:,} bytes (decoded); "
        "if the site is right to be this big, raise the limit for it"
    )
    if not encodings and declared.isdigit() and int(declared) > cap:
        raise TooLarge(too_large)
    pieces: Iterable[bytes] = response.iter_raw(chunk_size=_RAW_CHUNK)
    # Encodings are listed in the order applied, so the last one is undone first.
    for encoding in reversed(encodings):
        pieces = inflate(pieces, encoding, where)
    body = bytearray()
    for piece in pieces:
        body += piece
        if len(body) > cap:
            raise TooLarge(too_large)
        if time.monotonic() > deadline:
            # The socket layer already stops at the deadline; this holds with a test transport.
            raise httpx.ReadTimeout("overall deadline passed while reading the body")
    return bytes(body)
