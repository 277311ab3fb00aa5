"""The Host header check, as ASGI middleware. Pure apart from the HTTP exchange.

In: each request, and the host names the inspector answers to (`allowed_hosts`: the setting
``web.allowed_hosts``, else the host it serves on, localhost and the loopback addresses, plus
the host of ``web.base_url``). Out: the request passed on when its ``Host`` is one of them,
else 400 saying which setting to change. A forged ``Host`` would otherwise end up in the links
of ``/feed.atom``, and a name that resolves to loopback for an attacker's page (DNS
rebinding) would let that page read a loopback inspector. ``/healthz`` stays open, as it does
for the token (health probes ask by address).
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from monitor.web.auth import OPEN_PATHS, send_plain

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")
_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # listening everywhere names no host


def allowed_hosts(configured: Iterable[str] | None, *, served_host: str,
                  base_url: str | None) -> tuple[str, ...]:
    """The host names to answer to: `configured`, else the served host and the local names;
    the host of `base_url` in either case."""
    hosts = [*(configured if configured is not None
               else (*LOCAL_HOSTS, host_name(served_host)))]
    if base_url:
        hosts.append(urlsplit(base_url).hostname or "")
    return tuple(dict.fromkeys(host for host in hosts if host not in _ANY_ADDRESS))


def host_name(header: str) -> str:
    """The name in a ``Host`` header: no port, no IPv6 brackets, lower case, no final dot."""
    header = header.strip().lower()
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    if header.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        header = header.split(":", 1)[0]
    return header.rstrip(".")


def host_allowed(name: str, allowed: Iterable[str]) -> bool:
    for pattern in allowed:
        if pattern == "*" or name == pattern:
            return True
        if pattern.startswith("*.") and name.endswith(pattern[1:]):
            return True
    return False


class HostCheck:
    def __init__(self, app, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        host = next((value.decode("latin-1") for key, value in scope.get("headers", [])
                     if key.lower() == b"host"), "")
        if host and host_allowed(host_name(host), self.allowed):
            await self.app(scope, receive, send)
            return
        await send_plain(send, 400, f"the host {host!r} is not one this inspector answers to; "
                         "add it to web.allowed_hosts in monitor.yaml\n")
