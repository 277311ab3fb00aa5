"""Look at a URL once, as `feeds check` and `feeds add` need: is it a feed, or which feeds does
the page advertise? Does network I/O (one fetch per URL tried); stores nothing.

In: a URL and the `HttpSettings` (the same limits as the daemon: private networks, timeouts,
redirects, size caps). Out: `FeedCheck` (what one fetch and one parse found: the feed, its
HTTP validators and caching hints, or why it is not a feed and the feeds the page advertises),
and for `find_feeds` a `FoundFeeds` (the feeds to add, each parsed, and the ones left aside).
Raises the `FetchError` family for the URL asked, and `NotAFeed` when no feed can be found.

How `find_feeds` chooses: the URL itself when it is a feed; else the first advertised feed that
parses, comments feeds aside (all of them with `take_all`); else the first of the site's usual
feed URLs (`discover.SUSPECT_PATHS`) that parses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.errors import FetchError, NotAFeed
from monitor.feeds.discover import FeedLink, discover_feeds, suspect_urls
from monitor.feeds.parse import ParsedFeed, parse_feed
from monitor.fetch.client import FetchLimits, fetch_once
from monitor.settings import HttpSettings


@dataclass(frozen=True)
class FeedCheck:
    url: str  # as asked
    final_url: str  # after redirects
    status: int
    content_type: str | None
    size: int  # decoded body bytes
    feed: ParsedFeed | None  # None when the body is not a feed
    problem: str | None  # why it is not a feed
    advertised: tuple[FeedLink, ...]  # the feeds an HTML page advertises, main ones first
    etag: str | None
    last_modified: str | None
    cache_control: str | None
    expires: str | None
    over_feed_cap: bool  # larger than http.max_feed_bytes: the daemon would refuse it

    @property
    def newest(self) -> datetime | None:
        entries = self.feed.entries if self.feed else ()
        return max((entry.published for entry in entries if entry.published), default=None)


@dataclass(frozen=True)
class Rejected:
    url: str
    reason: str  # an error's stable reason ("not-a-feed", "http-404", ...)
    message: str


@dataclass(frozen=True)
class FoundFeeds:
    feeds: tuple[FeedCheck, ...]  # to add, each one parsed
    how: str  # "the URL is a feed", "advertised by the page" or "found at a usual feed URL"
    left_aside: tuple[FeedLink, ...]  # advertised but not taken (others, comments feeds)
    rejected: tuple[Rejected, ...]  # candidates tried that failed


def check_url(url: str, http: HttpSettings) -> FeedCheck:
    """Fetch `url` once (the daemon's limits, page size cap) and parse it once; raises the
    FetchError family."""
    fetched = fetch_once(url, FetchLimits.from_settings(http))
    headers = fetched.headers  # lower-case keys
    content_type = headers.get("content-type")
    feed, problem, advertised = None, None, ()
    try:
        feed = parse_feed(fetched.content, url=fetched.url, headers=headers)
    except NotAFeed as exc:
        problem = str(exc)
        advertised = discover_feeds(fetched.content, page_url=fetched.url,
                                    content_type=content_type)
    return FeedCheck(
        url=url, final_url=fetched.url, status=fetched.status, content_type=content_type,
        size=len(fetched.content), feed=feed, problem=problem, advertised=advertised,
        etag=fetched.etag, last_modified=fetched.last_modified,
        cache_control=headers.get("cache-control"), expires=headers.get("expires"),
        over_feed_cap=feed is not None and len(fetched.content) > http.max_feed_bytes,
    )


def find_feeds(url: str, http: HttpSettings, *, take_all: bool = False) -> FoundFeeds:
    """The feed(s) to add for `url`, a feed or a site's page; raises NotAFeed when none."""
    first = check_url(url, http)
    if first.feed is not None:
        return FoundFeeds(feeds=(first,), how="the URL is a feed", left_aside=(), rejected=())
    main = [link for link in first.advertised if not link.comments]
    comments = tuple(link for link in first.advertised if link.comments)
    rejected: list[Rejected] = []
    taken = _parsing(main, http, rejected, stop_at_first=not take_all)
    if taken:
        taken_urls = {check.url for check in taken}
        aside = tuple(link for link in first.advertised if link.url not in taken_urls)
        return FoundFeeds(feeds=tuple(taken), how="advertised by the page", left_aside=aside,
                          rejected=tuple(rejected))
    suspects = [FeedLink(url=u, type="rss", title=None, comments=False)
                for u in suspect_urls(first.final_url)]
    taken = _parsing(suspects, http, rejected, stop_at_first=True)
    if taken:
        return FoundFeeds(feeds=tuple(taken), how="found at a usual feed URL",
                          left_aside=comments, rejected=tuple(rejected))
    raise NotAFeed(_nothing_found(url, first, main, comments))


def _parsing(links: list[FeedLink], http: HttpSettings, rejected: list[Rejected], *,
             stop_at_first: bool) -> list[FeedCheck]:
    """The links that fetch and parse as feeds (each fetched once), in order."""
    found: list[FeedCheck] = []
    for link in links:
        try:
            check = check_url(link.url, http)
        except FetchError as exc:
            rejected.append(Rejected(link.url, exc.reason, str(exc)))
            continue
        if check.feed is None:
            rejected.append(Rejected(link.url, NotAFeed.reason, check.problem or ""))
            continue
        found.append(check)
        if stop_at_first:
            break
    return found


def _nothing_found(url: str, first: FeedCheck, main: list[FeedLink],
                   comments: tuple[FeedLink, ...]) -> str:
    if main:
        where = f"the {len(main)} feed(s) the page advertises did not parse"
    elif comments:
        where = (f"the page advertises only comments feeds ({', '.join(c.url for c in comments)})"
                 "; add one by giving its URL if that is really wanted")
    else:
        where = "the page advertises no feed"
    tried = ", ".join(suspect_urls(first.final_url))
    return (f"{url}: no feed found: the URL is not a feed, {where}, and none of {tried} is "
            "one. Find the feed link on the site and run `monitor feeds check URL` on it")
