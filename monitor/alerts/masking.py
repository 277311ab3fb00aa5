"""Alert addresses shown without their secrets, and error texts cleaned of them. Pure.

In: an address as written in monitor.yaml (``${VAR}`` kept) or as expanded. Out: `masked`, the
address with what may be secret replaced by ``****`` (a password; a host that is not a host
name, such as a bot token; every path segment, where services put tokens and topics; the
values of query parameters other than the harmless ones such as ``to``); a ``${VAR}`` stays,
as it names a variable and not its value. `scrub` removes from a text (an error a service
returned) every secret part of the expanded addresses, so nothing shown or stored holds them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote

MASK = "****"
_VARIABLE = re.compile(r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")
_HOST_NAME = re.compile(r"^(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|\[[0-9A-Fa-f:.]+\])$")
# query parameters that say where or how, never a credential
_HARMLESS = frozenset({"to", "cc", "bcc", "from", "name", "format", "mode", "smtp", "port",
                       "priority", "tags", "overflow", "lang", "method", "verify"})
_SHORTEST_SECRET = 3  # shorter parts are not looked for in texts (they would match anything)


def masked(address: str) -> str:
    """`address` as it may be shown."""
    return _split(address)[0]


def secrets(address: str) -> list[str]:
    """The parts of `address` (expanded) that `masked` hides, the address itself first."""
    return [address, *_split(address)[1]]


def scrub(text: str, addresses: Iterable[str]) -> str:
    """`text` with every secret part of `addresses` (expanded) replaced by ``****``, longest
    first (a token inside a URL goes with the URL)."""
    parts = {part for address in addresses for part in secrets(address)
             if len(part) >= _SHORTEST_SECRET}
    for part in sorted(parts, key=len, reverse=True):
        text = text.replace(part, MASK)
        if (encoded := quote(part, safe="")) != part:
            text = text.replace(encoded, MASK)
    return text


def _split(address: str) -> tuple[str, list[str]]:
    """(the address masked, the parts hidden)."""
    hidden: list[str] = []

    def hide(part: str) -> str:
        if not part or _VARIABLE.match(part):
            return part
        hidden.append(part)
        return MASK

    scheme, separator, rest = address.strip().partition("://")
    if not separator:
        return (address if _VARIABLE.match(address.strip()) else hide(address.strip())), hidden
    rest, _, fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    userinfo, at, hostport = netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    host, port = hostport, ""
    if ":" in hostport and (tail := hostport.rsplit(":", 1))[1].isdigit():
        host, port = tail[0], ":" + tail[1]
    shown = f"{scheme}://"
    if at:
        shown += user + (colon + hide(password)) + "@"
    shown += (host if _HOST_NAME.match(host) or _VARIABLE.match(host) else hide(host)) + port
    if slash:
        shown += "/" + "/".join(hide(segment) for segment in path.split("/"))
    if query:
        shown += "?" + "&".join(
            f"{key}={value if key.lower() in _HARMLESS else hide(value)}"
            for key, value in parse_qsl(query, keep_blank_values=True))
    return shown + (f"#{fragment}" if fragment else ""), hidden
