"""The network backend under httpx: connect only to allowed addresses, and only until the deadline.

In: an AddressPolicy (`guarded_transport`) and, per request, the overall deadline of the get()
running in this thread (`current_deadline`). Out: an httpx transport whose connections resolve
the host themselves (DNS lookup bounded by the deadline), ask `netguard` about every address and
connect only to allowed ones, raising AddressRefused when none is; every connect, TLS handshake,
read and write on them gets at most the time left. Does network I/O.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterable
from contextvars import ContextVar

import httpcore
import httpx

from monitor.netguard import AddressPolicy

# The deadline of the get() running in this thread (None outside one). A context variable, not
# an argument, because httpcore calls the backend's streams with only a per-operation timeout.
current_deadline: ContextVar[float | None] = ContextVar("monitor_fetch_deadline", default=None)


def _time_left(timeout: float | None, on_expiry: type[Exception]) -> float | None:
    """`timeout` cut to what is left of the deadline; raises `on_expiry` when nothing is."""
    deadline = current_deadline.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise on_expiry("overall deadline passed")
    return left if timeout is None else min(timeout, left)


class AddressRefused(Exception):
    """Raised by the backend. Not an httpcore error, so httpx passes it up unchanged."""

    def __init__(self, host: str, refused: list[tuple[str, str]]) -> None:
        super().__init__(host, refused)
        self.host, self.refused = host, refused

    def refused_text(self) -> str:
        """E.g. "is a loopback address" or "resolves to 10.0.0.7 (a private address)"."""
        if [ip for ip, _ in self.refused] == [self.host]:
            return f"is a {self.refused[0][1]} address"
        listed = ", ".join(f"{ip} (a {kind} address)" for ip, kind in self.refused)
        return f"resolves to {listed}"


class _DeadlineStream(httpcore.NetworkStream):
    """A connected stream whose every operation ends by the deadline of the current get()."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _time_left(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _time_left(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: object,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        # server_hostname is the URL's host, so SNI and certificate checks use the name even
        # though the socket was connected to a checked IP address.
        tls = self._stream.start_tls(
            ssl_context,  # type: ignore[arg-type]
            server_hostname,
            _time_left(timeout, httpcore.ConnectTimeout),
        )
        return _DeadlineStream(tls)

    def get_extra_info(self, info: str) -> object:
        return self._stream.get_extra_info(info)


class _GuardedBackend(httpcore.SyncBackend):
    """Resolves the host itself and connects only to addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = _resolve(host, port, _time_left(timeout, httpcore.ConnectTimeout))
        allowed, refused = [], []
        for ip in addresses:
            reason = self._policy.refusal_reason(ip)
            if reason is None:
                allowed.append(ip)
            else:
                refused.append((ip, reason))
        if not allowed:
            raise AddressRefused(host, refused)
        failure: httpcore.ConnectError | None = None
        for ip in allowed:
            try:
                stream = super().connect_tcp(
                    ip,
                    port,
                    timeout=_time_left(timeout, httpcore.ConnectTimeout),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                failure = exc  # try the next address, as socket.create_connection does
                continue
            return _DeadlineStream(stream)
        assert failure is not None
        raise failure


def _resolve(host: str, port: int, timeout: float | None) -> list[str]:
    """The IP addresses of `host`, in resolver order, waiting at most `timeout` seconds.

    getaddrinfo cannot be interrupted, so it runs in a daemon thread that is left behind if it
    overruns; a stuck resolver then costs a thread until the system gives up, not the deadline.
    """
    try:
        return [str(ipaddress.ip_address(host))]  # a literal needs no lookup
    except ValueError:
        pass
    outcome: list[list[tuple] | BaseException] = []

    def lookup() -> None:
        try:
            outcome.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # reported to the caller below, whatever it is
            outcome.append(exc)

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        raise httpcore.ConnectTimeout(f"DNS lookup of {host} took over {timeout:g} s")
    result = outcome[0]
    if isinstance(result, BaseException):
        raise httpcore.ConnectError(f"DNS lookup of {host} failed: {result}")
    addresses = list(dict.fromkeys(str(info[4][0]) for info in result))
    if not addresses:
        raise httpcore.ConnectError(f"DNS lookup of {host} found no address")
    return addresses


def guarded_transport(policy: AddressPolicy) -> httpx.HTTPTransport:
    ssl_context = httpx.create_ssl_context()  # certifi's CAs, loaded once for both pools
    transport = httpx.HTTPTransport(verify=ssl_context)
    # httpx 0.28 cannot hand a network backend to HTTPTransport, so its pool is rebuilt with
    # httpcore's public arguments plus ours (httpx is pinned <0.29, and a test refusing loopback
    # fails if this ever stops taking effect).
    limits = httpx.Limits()
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=_GuardedBackend(policy),
    )
    return transport
