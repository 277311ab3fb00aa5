"""netguard: which resolved addresses monitor may connect to. Pure: no network."""

from __future__ import annotations

import pytest

from monitor.fetch.netguard import AddressPolicy, non_public_kind


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "41.248.0.1",
        "196.200.131.1",
        "2001:4860:4860::8888",
        "2606:4700::1111",
        "2a00:1450:4007:80e::200e",
        "::ffff:8.8.8.8",  # IPv4-mapped public: the same host as 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert non_public_kind(ip) is None
    assert AddressPolicy().refusal_reason(ip) is None


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.0.0.2", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456:789a::1", "private"),
        ("fc00::1", "private"),
        ("100.64.0.1", "shared (carrier-grade NAT)"),
        ("169.254.169.254", "link-local"),  # cloud metadata service
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),  # as getaddrinfo reports a scoped address
        ("fec0::1", "site-local"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.2.10", "documentation"),
        ("2001:db8::1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::ffff:127.0.0.1", "IPv4-mapped loopback"),
        ("::ffff:10.1.2.3", "IPv4-mapped private"),
        ("::ffff:169.254.169.254", "IPv4-mapped link-local"),
        ("::ffff:0.0.0.0", "IPv4-mapped unspecified"),
        ("2002:7f00:1::", "6to4 loopback"),
        ("2002:c0a8:101::1", "6to4 private"),
        ("64:ff9b::7f00:1", "NAT64 loopback"),
        ("64:ff9b::a00:1", "NAT64 private"),
        ("::7f00:1", "reserved"),  # deprecated IPv4-compatible ::127.0.0.1
        ("not-an-ip", "not an IP address"),
        ("", "not an IP address"),
    ],
)
def test_non_public_addresses_are_refused_with_their_kind(ip: str, kind: str) -> None:
    assert non_public_kind(ip) == kind
    assert AddressPolicy().refusal_reason(ip) == kind


def test_allow_private_networks_allows_everything() -> None:
    policy = AddressPolicy(allow_private_networks=True)
    for ip in ("127.0.0.1", "::1", "10.0.0.1", "169.254.169.254", "::ffff:127.0.0.1"):
        assert policy.refusal_reason(ip) is None


def test_allowed_networks_open_only_the_ranges_named() -> None:
    policy = AddressPolicy(allowed_networks=("127.0.0.2/32", "10.1.0.0/16"))
    assert policy.refusal_reason("127.0.0.2") is None
    assert policy.refusal_reason("::ffff:127.0.0.2") is None  # the same host, IPv6-mapped
    assert policy.refusal_reason("10.1.200.3") is None
    assert policy.refusal_reason("127.0.0.3") == "loopback"
    assert policy.refusal_reason("10.2.0.1") == "private"
    assert policy.refusal_reason("8.8.8.8") is None


def test_allowed_networks_must_be_cidr_ranges() -> None:
    with pytest.raises(ValueError, match="not a CIDR range"):
        AddressPolicy(allowed_networks=("intranet.example",))


def test_policies_compare_by_their_settings() -> None:
    assert AddressPolicy(False, ("10.0.0.0/8",)) == AddressPolicy(False, ("10.0.0.0/8",))
