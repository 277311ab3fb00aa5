"""Which addresses the fetcher connects to: name resolution that drops refused addresses.

In: an AddressPolicy; per lookup a host name and port from aiohttp's connector. Out
(`GuardedResolver`): the addresses the host resolves to that the policy allows, or
AddressRefused when it allows none, so a DNS name pointing inside the network is refused before
any connection. aiohttp never asks a resolver about IP literals: `check_literal` is for those,
and `fetch` calls it on every hop. Does network I/O (DNS, through aiohttp's default resolver).
"""

from __future__ import annotations

import socket

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from monitor.fetch.netguard import AddressPolicy


class AddressRefused(Exception):
    """Not an aiohttp error nor an OSError, so aiohttp passes it up unchanged."""

    def __init__(self, host: str, refused: list[tuple[str, str]]) -> None:
        super().__init__(host, refused)
        self.host, self.refused = host, refused

    def refused_text(self) -> str:
        """E.g. "is a loopback address" or "resolves to 10.0.0.7 (a private address)"."""
        if [ip for ip, _ in self.refused] == [self.host]:
            return f"is a {self.refused[0][1]} address"
        listed = ", ".join(f"{ip} (a {kind} address)" for ip, kind in self.refused)
        return f"resolves to {listed}"


def check_literal(policy: AddressPolicy, ip: str) -> None:
    """Raise AddressRefused when the policy refuses the IP literal `ip` (a URL's host)."""
    kind = policy.refusal_reason(ip)
    if kind is not None:
        raise AddressRefused(ip, [(ip, kind)])


class GuardedResolver(AbstractResolver):
    """aiohttp's default resolver, keeping only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy) -> None:
        self._policy = policy
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        if not found:
            raise OSError(f"DNS lookup of {host} found no usable address")  # aiohttp wraps it
        allowed = [entry for entry in found if self._policy.refusal_reason(entry["host"]) is None]
        if allowed:
            return allowed
        kinds = {entry["host"]: self._policy.refusal_reason(entry["host"]) or "" for entry in found}
        raise AddressRefused(host, list(kinds.items()))

    async def close(self) -> None:
        await self._resolver.close()
