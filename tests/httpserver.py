"""A real HTTP/1.1 server on a loopback address for tests, able to misbehave on purpose.

In: a route table, path -> reply specs, set with `route()`. Out: real answers on
127.0.0.x:<ephemeral port>, and a log of the requests seen per path. Threaded; `close()` (or
leaving the `with` block) stops it without waiting on slow or endless answers.

    with LoopbackServer("127.0.0.2") as server:
        server.route("/feed.xml", Reply(body, content_type="application/rss+xml", conditional=True))
        fetch(server.url("/feed.xml"))
        assert server.requests("/feed.xml")[-1].headers["if-none-match"] == ...

POST requests are answered from the same routes, their bodies kept in `requests()` (webhooks).
Specs: Reply (static bytes; optional ETag/Last-Modified with automatic 304s, gzip, delay),
Redirect, Endless (a body that never ends), Trickle (one byte every interval, forever) and Drop
(the connection closed with no answer, or in the middle of one). `gzip_bomb()` makes a small
gzip body that inflates to over 100 MB. A path with no route answers 404. With
`tls=self_signed_tls(folder)[0]` the server speaks HTTPS. `connections`,
`most_connections_at_once` and `most_requests_at_once` count what the server has seen.

The fixture `loopback_server` yields a started server on 127.0.0.1; a conftest can offer it with
`from tests.httpserver import loopback_server  # noqa: F401`.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import socket
import socketserver
import ssl
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

# One fixed Last-Modified for conditional replies, so validators stay stable across a test.
FIXED_LAST_MODIFIED = "Mon, 02 Jun 2025 08:00:00 GMT"


@dataclass(frozen=True)
class Reply:
    """Static bytes. With `conditional`, an ETag (a hash of the body) and FIXED_LAST_MODIFIED are
    sent unless given, and matching If-None-Match / If-Modified-Since requests get a 304."""

    body: bytes = b""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: str | None = None
    conditional: bool = False
    gzip: bool = False  # send the body gzip-encoded, with Content-Encoding: gzip
    delay: float = 0.0  # seconds to wait before answering

    def validators(self) -> tuple[str | None, str | None]:
        etag, last_modified = self.etag, self.last_modified
        if self.conditional:
            etag = etag or f'"{hashlib.sha256(self.body).hexdigest()[:16]}"'
            last_modified = last_modified or FIXED_LAST_MODIFIED
        return etag, last_modified


@dataclass(frozen=True)
class Redirect:
    location: str  # a path on this server or an absolute URL
    status: int = 302
    delay: float = 0.0


@dataclass(frozen=True)
class Endless:
    """A chunked 200 whose body never ends (until the client leaves or the server closes)."""

    chunk: bytes = b"x" * 16384
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Trickle:
    """A chunked 200 sending one byte every `interval` seconds, forever."""

    interval: float = 0.5
    byte: bytes = b"x"


@dataclass(frozen=True)
class Drop:
    """Close the connection abruptly: with no answer, or after `partial` bytes of a body that
    was announced longer. `reset` sends a TCP RST instead of a FIN."""

    partial: bytes = b""
    reset: bool = False


Spec = Reply | Redirect | Endless | Trickle | Drop


@dataclass(frozen=True)
class SeenRequest:
    method: str
    path: str
    query: str
    headers: Mapping[str, str]  # lower-case keys
    client: str  # the client's IP address
    at: float  # time.monotonic() when the request arrived
    body: bytes = b""  # what a POST sent (a webhook's JSON)


def free_port(host: str = "127.0.0.1", family: socket.AddressFamily = socket.AF_INET) -> int:
    """A TCP port free on `host` now, for a server process we start."""
    with socket.socket(family) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def wait_until_serving(server: subprocess.Popen, url: str, *, timeout: float = 30) -> None:
    """Wait for a server process we started (a `monitor serve`) to answer 200 at `url`; an
    AssertionError with its standard error if it exits or does not answer in time."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"the server did not start: {server.stderr.read()}")
        time.sleep(0.1)


@functools.cache
def gzip_bomb(decoded_size: int = 128 * 1024 * 1024) -> bytes:
    """One gzip member of `decoded_size` zero bytes: about 130 KB on the wire at the default."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(decoded_size // len(block))]
    parts.append(compressor.compress(bytes(decoded_size % len(block))))
    parts.append(compressor.flush())
    return b"".join(parts)


def self_signed_tls(folder: Path, name: str = "localhost") -> tuple[ssl.SSLContext, Path]:
    """A server TLS context with a fresh self-signed certificate for DNS name `name`, and the
    certificate's path (a client trusts it through SSL_CERT_FILE). Needs the openssl command."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
         "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


class LoopbackServer:
    """A threaded HTTP/1.1 server on `host` (127.0.0.x), port chosen by the system."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, tls: ssl.SSLContext | None = None
    ) -> None:
        """With `tls` (see `self_signed_tls()`), the server speaks HTTPS."""
        self._server = _Server((host, port), _Handler)
        self._server.tls = tls
        self._server.owner = self
        self.host, self.port = self._server.server_address[:2]
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[tuple[Spec, ...], list[int]]] = {}
        self._log: dict[str, list[SeenRequest]] = {}
        self._in_flight = 0
        self._most_in_flight = 0
        self.stopping = threading.Event()
        self._loop = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},  # how long close() waits for the loop to notice
            name=f"loopback server {host}:{self.port}",
            daemon=True,
        )
        self._loop.start()

    def __enter__(self) -> LoopbackServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        scheme = "https" if self._server.tls else "http"
        return f"{scheme}://{self.host}:{self.port}"

    @property
    def connections(self) -> int:
        """How many TCP connections the server has accepted so far."""
        return self._server.accepted

    @property
    def most_connections_at_once(self) -> int:
        """The most TCP connections that were open at the same time (idle kept-alive included)."""
        return self._server.most_open

    @property
    def most_requests_at_once(self) -> int:
        """The most requests that were being answered at the same time."""
        with self._lock:
            return self._most_in_flight

    def url(self, path: str) -> str:
        return self.base_url + path

    def route(self, path: str, *specs: Spec) -> None:
        """Answer `path` with `specs`: successive requests get the next spec; the last repeats."""
        if not path.startswith("/") or not specs:
            raise ValueError("route() needs a path starting with '/' and at least one spec")
        with self._lock:
            self._routes[path] = (specs, [0])

    def requests(self, path: str) -> list[SeenRequest]:
        """The requests seen for `path` (query string ignored), oldest first."""
        with self._lock:
            return list(self._log.get(path, []))

    def _answered(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def close(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()  # wakes delays and trickles
        self._server.shutdown()
        self._loop.join()
        self._server.drop_connections()
        self._server.server_close()
        self._server.join_handlers(timeout=2.0)

    def _next_spec(self, seen: SeenRequest) -> Spec | None:
        with self._lock:
            self._in_flight += 1
            self._most_in_flight = max(self._most_in_flight, self._in_flight)
            self._log.setdefault(seen.path, []).append(seen)
            if seen.path not in self._routes:
                return None
            specs, position = self._routes[seen.path]
            spec = specs[min(position[0], len(specs) - 1)]
            position[0] += 1
            return spec


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LoopbackServer
    tls: ssl.SSLContext | None = None

    def __init__(self, address: tuple[str, int], handler: type[_Handler]) -> None:
        self._open: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._guard = threading.Lock()
        self.accepted = 0
        self.open_now = 0
        self.most_open = 0
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind asks reverse DNS for the host's name, which can stall a test.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: socket.socket, client_address: tuple) -> None:
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._guard:
            self.accepted += 1
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            self._open.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def handle_error(self, request: socket.socket, client_address: tuple) -> None:
        # A client hanging up mid-answer is what several tests do on purpose: not worth a trace.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def process_request_thread(self, request: socket.socket, client_address: tuple) -> None:
        try:
            self._serve_connection(request, client_address)
        finally:
            with self._guard:
                self.open_now -= 1

    def _serve_connection(self, request: socket.socket, client_address: tuple) -> None:
        if self.tls is not None:
            # The handshake runs here, in the connection's own thread, so that a client that
            # fails it (or never starts it) cannot stall the accept loop.
            with self._guard:
                self._open.discard(request)
            try:
                request.settimeout(5.0)
                request = self.tls.wrap_socket(request, server_side=True)
                request.settimeout(None)
            except OSError:  # ssl.SSLError included: the client refused our certificate
                request.close()
                return
            with self._guard:
                self._open.add(request)
        super().process_request_thread(request, client_address)

    def shutdown_request(self, request: socket.socket) -> None:
        with self._guard:
            self._open.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Wake handlers blocked reading a kept-alive connection, so they end."""
        with self._guard:
            still_open = list(self._open)
        for connection in still_open:
            with contextlib.suppress(OSError):  # it may have closed meanwhile
                connection.shutdown(socket.SHUT_RDWR)

    def join_handlers(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        with self._guard:
            handlers = list(self._handlers)
        for thread in handlers:
            thread.join(max(0.0, end - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:  # the stdlib's name for the GET handler
        owner = self.server.owner
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        seen = SeenRequest(
            method=self.command,
            path=path,
            query=query,
            headers={key.lower(): value for key, value in self.headers.items()},
            client=self.client_address[0],
            at=time.monotonic(),
            body=self.rfile.read(length) if length else b"",
        )
        spec = owner._next_spec(seen)
        try:
            self._answer(spec, seen)
        finally:
            owner._answered()

    do_POST = do_GET  # a webhook: answered from the same routes, its body kept

    def _answer(self, spec: Spec | None, seen: SeenRequest) -> None:
        owner = self.server.owner
        try:
            if spec is None:
                self._send(404, b"no route for this path\n", {"Content-Type": "text/plain"})
            elif isinstance(spec, Reply):
                self._reply(spec, seen)
            elif isinstance(spec, Redirect):
                if not owner.stopping.wait(spec.delay):
                    self._send(spec.status, b"", {"Location": spec.location})
            elif isinstance(spec, Endless | Trickle):
                self._stream_forever(spec)
            else:
                self._drop(spec)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client left: normal for endless bodies

    def _reply(self, spec: Reply, seen: SeenRequest) -> None:
        if self.server.owner.stopping.wait(spec.delay):
            self.close_connection = True
            return
        etag, last_modified = spec.validators()
        headers = {"Content-Type": spec.content_type}
        if etag:
            headers["ETag"] = etag
        if last_modified:
            headers["Last-Modified"] = last_modified
        headers.update(spec.headers)
        if _not_modified(seen.headers, etag, last_modified):
            self._send(304, b"", {k: v for k, v in headers.items() if k != "Content-Type"})
            return
        body = spec.body
        if spec.gzip:
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        self._send(spec.status, body, headers)

    def _send(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if status != 304:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream_forever(self, spec: Endless | Trickle) -> None:
        self.close_connection = True
        self.send_response(200)
        content_type = spec.content_type if isinstance(spec, Endless) else "text/plain"
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        stopping = self.server.owner.stopping
        while not stopping.is_set():
            piece = spec.chunk if isinstance(spec, Endless) else spec.byte
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.flush()
            if isinstance(spec, Trickle) and stopping.wait(spec.interval):
                break

    def _drop(self, spec: Drop) -> None:
        self.close_connection = True
        if spec.partial:
            self.send_response(200)
            self.send_header("Content-Length", str(len(spec.partial) + 100_000))
            self.end_headers()
            self.wfile.write(spec.partial)
            self.wfile.flush()
        if spec.reset:
            # Linger on with timeout 0 makes close() send RST instead of FIN; closed here, as
            # socketserver would first shut down writing (a FIN).
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()


def _not_modified(
    request_headers: Mapping[str, str], etag: str | None, last_modified: str | None
) -> bool:
    """RFC 9110 13.2.2: If-None-Match decides when present, else If-Modified-Since."""
    if_none_match = request_headers.get("if-none-match")
    if if_none_match is not None:
        if etag is None:
            return False
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or etag.removeprefix("W/") in tags
    if_modified_since = request_headers.get("if-modified-since")
    if if_modified_since is None or last_modified is None:
        return False
    try:
        return parsedate_to_datetime(last_modified) <= parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False


@pytest.fixture
def loopback_server() -> Iterator[LoopbackServer]:
    with LoopbackServer("127.0.0.1") as server:
        yield server
