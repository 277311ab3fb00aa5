"""Robots Exclusion Protocol (RFC 9309) for article pages: may monitor fetch this URL?

In: page URLs; a site's robots.txt read through the fetch function given (any callable
returning a `Fetched` and raising the FetchError family, e.g. `Fetcher.get`). Out: `check`
returns when a page may be fetched, raises `RobotsDisallowed` when not, and `ConnectFailed`
when the site cannot be reached at all; a site's Crawl-delay (`crawl_delay`). Does network I/O
through that function only, and logs one line for a site that cannot be reached; runs on one
asyncio event loop.

The rules are parsed by protego (wildcards `*`, the `$` anchor, the longest match decides and
Allow wins a tie). The group that applies is the one naming monitor's product token (the
User-Agent up to its first `/`, e.g. `monitor`), else the `*` group, else none (all allowed).

One robots.txt per scheme, host and port, read from `<scheme>://<host>[:port]/robots.txt`,
kept in a bounded LRU cache of `max_hosts` sites. Callers asking about the same site while it
is being read wait for that one read. What each answer means (RFC 9309 section 2.3.1):

- 2xx: parsed and kept `ttl` seconds. Only the first `max_bytes` are parsed (the RFC asks for
  at least 500 KiB), cut back to the last whole line so a cut rule is not read shorter than it
  is; the fetch function's own size cap must be above `max_bytes` for that cut to happen here.
  The bytes are read as UTF-8, undecodable ones replaced: a file that is not a robots.txt (an
  HTML page, garbage) yields the directives protego can find in it, usually none, so all is
  allowed.
- 3xx: followed by the fetch function, up to its own redirect limit.
- 4xx other than 429 ("unavailable"): no rules, everything allowed, kept `ttl` seconds. So are
  too many redirects (the RFC's choice) and a URL the fetch function refuses to fetch (not
  http(s), a private address): the page itself will be refused for that same reason and say so.
- 5xx, 429, a timeout, a failed connection, a file too large to download or any other fetch
  failure ("unreachable"): everything disallowed, and the site asked again after `retry`
  seconds (10 minutes by default, or longer when a 429 sends a longer Retry-After) rather than
  after `ttl`, so a site that is down or overloaded is neither hammered nor shut out for a day.
  When the site had a robots.txt read earlier, that copy stays in force instead, as RFC 9309
  section 2.4 allows while the file is unreachable. A failed connection (the site cannot be
  reached at all) is the same, but its pages are refused as what they are, `ConnectFailed`
  (reason ``connect-failed``), not as forbidden by a robots.txt nobody could read; it is logged
  once for the site, not once per page.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from protego import Protego

from monitor.errors import (
    ConnectFailed,
    FetchError,
    HTTPStatus,
    RefusedPrivate,
    RefusedURL,
    RobotsDisallowed,
    TooManyRedirects,
)
from monitor.schedule import retry_after_seconds

if TYPE_CHECKING:
    from monitor.fetch.client import Fetched

log = logging.getLogger("monitor.robots")
DEFAULT_MAX_BYTES = 512 * 1024
DEFAULT_RETRY = 600.0  # seconds before an unreachable robots.txt is asked for again
DEFAULT_MAX_HOSTS = 4096
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")  # RFC 9309 section 2.2.1


@dataclass(frozen=True)
class _Group:
    """The Disallow lines of the robots.txt groups that apply to one user agent."""

    agent: str  # our product token, or "*"
    disallows: tuple[tuple[int, str], ...]  # (line number, path pattern)


_NO_GROUP = _Group("*", ())  # of a site whose robots.txt could not be read


@dataclass(frozen=True)
class _SiteRules:
    """What one site's robots.txt says, as read at one time."""

    robots_url: str
    rules: Protego | None  # None: nothing could be read; `allow_all` decides
    group: _Group  # the group that applies to us, to name the refusing line in messages
    allow_all: bool  # meaningful only when `rules` is None
    expires: float  # on the cache's clock
    note: str  # how it was read, for messages: "answered 404", "could not be read (...)"
    no_connection: str | None = None  # why the site could not be connected to, if that is why


class RobotsCache:
    """Site rules read once per `ttl` and shared by every caller on one event loop."""

    def __init__(
        self,
        fetch: Callable[[str], Awaitable[Fetched]],
        *,
        user_agent: str,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = DEFAULT_MAX_BYTES,
        retry: float = DEFAULT_RETRY,
        max_hosts: int = DEFAULT_MAX_HOSTS,
    ) -> None:
        """`user_agent` is the User-Agent header monitor sends; its product token picks the
        group. `retry` (seconds) is how soon an unreachable robots.txt is asked for again;
        `max_hosts` bounds the cache (least recently used sites are dropped first)."""
        token = _PRODUCT_TOKEN.match(user_agent.strip())
        if token is None:
            raise ValueError(f"user agent {user_agent!r} does not start with a product token")
        self.token = token.group().lower()
        self._fetch = fetch
        self._ttl, self._retry, self._max_bytes = ttl, retry, max_bytes
        self._clock = clock
        self._max_hosts = max_hosts
        self._sites: OrderedDict[str, _SiteRules] = OrderedDict()
        self._reading: dict[str, asyncio.Task[_SiteRules]] = {}

    async def check(self, url: str) -> None:
        """Return when `url` may be fetched; raise RobotsDisallowed, naming the rule, when not.
        URLs that are not http(s) with a host have no robots.txt: they pass (the fetcher
        refuses them itself)."""
        found = await self._refusal(url)
        if found is None:
            return
        retry = max(found.expires - self._clock(), 0.0)
        if found.rules is None and found.no_connection is not None:
            raise ConnectFailed(
                f"{url}: {_site_of(url)} cannot be reached ({found.no_connection}); its pages "
                f"are tried again in {retry:.0f} s"
            )
        if found.rules is None:
            raise RobotsDisallowed(
                f"{url}: {found.robots_url} {found.note}; RFC 9309 says to take that as "
                "everything disallowed until it can be read, which monitor will try again in "
                f"{retry:.0f} s; nothing to do unless the site stays down"
            )
        raise RobotsDisallowed(
            f"{url}: {found.robots_url} refuses this page to monitor "
            f"({_refusing_rule(found.group, url)}); leave it, or ask the site to "
            "allow it; set http.robots_txt: false in monitor.yaml only with the site's permission"
        )

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay (seconds) the site's cached robots.txt gives monitor, if any."""
        site = _site_of(url)
        found = self._sites.get(site) if site is not None else None
        if found is None or found.rules is None:
            return None
        return found.rules.crawl_delay(self.token)

    async def _refusal(self, url: str) -> _SiteRules | None:
        """The site rules that refuse `url`, or None when it may be fetched."""
        site = _site_of(url)
        if site is None:
            return None
        found = await self._rules_for(site)
        if found.rules is None:
            return None if found.allow_all else found
        return None if found.rules.can_fetch(url, self.token) else found

    async def _rules_for(self, site: str) -> _SiteRules:
        cached = self._sites.get(site)
        if cached is not None and cached.expires > self._clock():
            self._sites.move_to_end(site)
            return cached
        reading = self._reading.get(site)
        if reading is None:
            reading = asyncio.ensure_future(self._read(site, cached))
            self._reading[site] = reading
            reading.add_done_callback(lambda _: self._reading.pop(site, None))
        # Shielded: a caller cancelled while waiting must not cancel the read the others share.
        return await asyncio.shield(reading)

    async def _read(self, site: str, previous: _SiteRules | None) -> _SiteRules:
        robots_url = f"{site}/robots.txt"
        try:
            fetched = await self._fetch(robots_url)
        except (TooManyRedirects, RefusedURL, RefusedPrivate) as exc:
            found = self._unavailable(robots_url, f"could not be read ({exc.reason})")
        except HTTPStatus as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                found = self._unavailable(robots_url, f"answered {exc.status}")
            else:
                found = self._unreachable(robots_url, f"answered {exc.status}", previous, exc)
        except FetchError as exc:
            found = self._unreachable(
                robots_url, f"could not be read ({exc.reason})", previous, exc
            )
            if isinstance(exc, ConnectFailed) and found.rules is None:
                found = replace(found, no_connection=exc.message)
                log.warning("%s cannot be reached (%s); its pages are tried again in %.0f s",
                            site, exc.message, found.expires - self._clock())
        else:
            found = self._parsed(robots_url, fetched)
        self._sites[site] = found
        self._sites.move_to_end(site)
        while len(self._sites) > self._max_hosts:
            self._sites.popitem(last=False)
        return found

    def _parsed(self, robots_url: str, fetched: Fetched) -> _SiteRules:
        body = fetched.content
        if len(body) > self._max_bytes:
            cut = body.rfind(b"\n", 0, self._max_bytes)
            body = body[: cut + 1 if cut >= 0 else self._max_bytes]
        text = body.decode("utf-8", errors="replace").removeprefix("\ufeff")
        return _SiteRules(
            robots_url=robots_url,
            rules=Protego.parse(text),
            group=_group_for(text, self.token),
            allow_all=True,
            expires=self._clock() + self._ttl,
            note=f"answered {fetched.status}",
        )

    def _unavailable(self, robots_url: str, note: str) -> _SiteRules:
        return _SiteRules(robots_url, None, _NO_GROUP, True, self._clock() + self._ttl, note)

    def _unreachable(
        self, robots_url: str, note: str, previous: _SiteRules | None, error: FetchError
    ) -> _SiteRules:
        delay = self._retry
        if isinstance(error, HTTPStatus):
            asked = retry_after_seconds(error.retry_after, datetime.now(UTC))
            delay = min(max(delay, asked or 0.0), max(self._ttl, delay))
        expires = self._clock() + delay
        if previous is not None and previous.rules is not None:
            return _SiteRules(
                robots_url, previous.rules, previous.group, True, expires, previous.note
            )
        return _SiteRules(robots_url, None, _NO_GROUP, False, expires, note)


def _site_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) URL, the port left out when it is the default."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def _group_for(text: str, token: str) -> _Group:
    """The Disallow lines of the groups naming `token`, or else of the `*` groups. Kept in
    place of the text, which may be large, only to say in a message which line refuses."""
    groups: list[tuple[set[str], list[tuple[int, str]]]] = []
    after_agent = False
    for number, line in enumerate(text.splitlines(), start=1):
        field, colon, value = line.split("#", 1)[0].partition(":")
        if not colon:
            continue  # blank, comment or garbage: it neither ends nor starts a group
        field, value = field.strip().lower(), value.strip()
        if field == "user-agent":
            if not after_agent:
                groups.append((set(), []))
            groups[-1][0].add(value.lower())
        elif groups and field == "disallow" and value:
            groups[-1][1].append((number, value))
        after_agent = field == "user-agent"
    agent = token if any(token in agents for agents, _ in groups) else "*"
    disallows = (line for agents, lines in groups if agent in agents for line in lines)
    return _Group(agent, tuple(disallows))


def _refusing_rule(group: _Group, url: str) -> str:
    """The Disallow line that refuses `url`, for the message: the longest one of the group
    that refuses it on its own, as protego's longest match would."""
    refusing = [
        (len(value), number, value)
        for number, value in group.disallows
        if not Protego.parse(f"User-agent: *\nDisallow: {value}").can_fetch(url, "*")
    ]
    if not refusing:
        return f"by the rules of its group for {group.agent!r}"
    _, number, value = max(refusing)
    return f"line {number}, 'Disallow: {value}', in its group for {group.agent!r}"
