"""Decide whether monitor may connect to a resolved IP address.

In: one IP address as text (what the resolver returned, not the URL's host name) and an
AddressPolicy. Out: None when the address may be used, else a short phrase saying what kind of
non-public address it is ("loopback", "private", "IPv4-mapped link-local" ...). Pure.

`connect.py` calls this at connect time, for every address a host name resolves to, so that a DNS
name pointing inside the network and a redirect to an internal host are refused alike.

The special-purpose ranges are kept as data below (from the IANA IPv4 and IPv6 special-purpose
address registries) rather than read from `ipaddress`'s `is_private` / `is_global`, whose answers
changed between Python patch releases (3.11.7 calls ff02::1 and fec0::1 "global"). `is_global` is
still consulted last, as a second net.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# First match wins, so narrower ranges come before the wider ones holding them.
_IPV4_RANGES: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),  # "this network"; Linux connects 0.0.0.0 to the local host
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),  # holds cloud metadata services (169.254.169.254)
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)

_IPV6_RANGES: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),  # local-use NAT64
    ("::/8", "reserved"),  # holds the deprecated IPv4-compatible ::a.b.c.d
    ("100::/64", "reserved"),  # discard-only
    ("2001:2::/48", "benchmarking"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)

_NAT64_WELL_KNOWN = ipaddress.IPv6Network("64:ff9b::/96")

_TABLES: dict[int, tuple[tuple[IPNetwork, str], ...]] = {
    4: tuple((ipaddress.IPv4Network(net), kind) for net, kind in _IPV4_RANGES),
    6: tuple((ipaddress.IPv6Network(net), kind) for net, kind in _IPV6_RANGES),
}


def non_public_kind(ip: str) -> str | None:
    """What kind of non-public address `ip` is, or None when it is a public (global) address.

    Text that is not an IP address counts as non-public ("not an IP address"): a caller that
    asks about it has no address it could safely connect to.
    """
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return "not an IP address"
    return _kind_of(address)


def _kind_of(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            label, ipv4 = embedded
            kind = _kind_of(ipv4)
            if kind is not None:
                return f"{label} {kind}"
            if label == "IPv4-mapped":
                # ::ffff:a.b.c.d is a.b.c.d spoken over an IPv6 socket: the same verdict.
                return None
    for network, kind in _TABLES[address.version]:
        if address in network:
            return kind
    if not address.is_global:
        return "non-global"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries and reaches (mapped, 6to4, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _NAT64_WELL_KNOWN:
        return "NAT64", ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class AddressPolicy:
    """Which resolved addresses monitor may connect to.

    allow_private_networks: every address is allowed (a test rig, or a deployment that polls
        intranet feeds and trusts its feed list).
    allowed_networks: CIDR ranges allowed even when private, e.g. ("10.1.2.0/24",) for one
        internal feed host; everything else non-public stays refused.
    """

    allow_private_networks: bool = False
    allowed_networks: tuple[str, ...] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks = []
        for text in self.allowed_networks:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError as exc:
                raise ValueError(
                    f"allowed network {text!r} is not a CIDR range such as 10.1.2.0/24: {exc}"
                ) from exc
        object.__setattr__(self, "_networks", tuple(networks))

    def refusal_reason(self, ip: str) -> str | None:
        """None when monitor may connect to `ip`, else what kind of non-public address it is."""
        if self.allow_private_networks:
            return None
        kind = non_public_kind(ip)
        if kind is None:
            return None
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return kind
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self._networks):
            return None
        return kind
