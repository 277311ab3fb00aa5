"""Feed autodiscovery: the feeds an HTML page advertises, main feeds first.

In: the page's bytes, the URL it was fetched from and its Content-Type. Out: an ordered tuple of
`FeedLink` (absolute http(s) URL, format, title, whether it is a comments feed). Also the "usual
suspect" feed URLs of a site, to try when a page advertises none. Pure: no network, no files.

A page advertises a feed with ``<link rel="alternate" type="application/rss+xml" href=...>``
(also atom+xml, rdf+xml, feed+json and json). Every such ``<link>`` of the document counts (lxml
moves a misplaced one out of the head anyway). Relative hrefs are resolved against the first
``<base href>``, itself resolved against the page URL, as browsers do. The same feed listed twice
(same URL up to a final slash and letter case, the comparison feeds.yaml uses) is kept once.

Order: the page's own order, except that comments feeds go last. WordPress article pages list
"Site » Feed", then "Site » Comments Feed" and "Site » <article> Comments Feed"; monitoring
wants the first, so a link whose title or URL says comments is ranked after every other feed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree

from monitor.extract import decode_html
from monitor.settings import feed_url_key

FEED_TYPES = {
    "application/rss+xml": "rss",
    "application/rdf+xml": "rdf",
    "application/atom+xml": "atom",
    "application/feed+json": "json",
    "application/json": "json",
}
# Tried in this order on a site whose page advertises no feed (WordPress, Hugo, Jekyll, ...).
SUSPECT_PATHS = ("/feed", "/rss", "/rss.xml", "/atom.xml", "/feed.xml", "/index.xml")

# "comments" in the languages of the feeds monitored and of common CMS translations.
_COMMENTS_TITLE = re.compile(
    r"comment|commentaire|coment[aá]rio|kommentar|commenti|تعليق|تعليقات", re.IGNORECASE
)
_COMMENTS_PATH = re.compile(r"/comments?(/|$)|[?&]comments?=", re.IGNORECASE)


@dataclass(frozen=True)
class FeedLink:
    url: str  # absolute http(s)
    type: str  # "rss", "rdf", "atom" or "json"
    title: str | None
    comments: bool  # a comments feed (ranked last)


def discover_feeds(
    content: bytes, *, page_url: str, content_type: str | None = None
) -> tuple[FeedLink, ...]:
    """The feeds `content` (an HTML page fetched from `page_url`) advertises, main ones first."""
    text = decode_html(content, content_type)
    if not text.strip():
        return ()
    try:
        tree = lxml.html.document_fromstring(text)
    except (etree.ParserError, ValueError):  # nothing lxml can make a document of
        return ()
    base = _base_url(tree, page_url)
    found: dict[str, FeedLink] = {}
    for link in tree.iter("link"):
        feed = _feed_link(link, base)
        if feed is not None:
            found.setdefault(feed_url_key(feed.url), feed)
    return tuple(sorted(found.values(), key=lambda feed: feed.comments))  # stable: page order


def suspect_urls(page_url: str) -> tuple[str, ...]:
    """The usual feed URLs of `page_url`'s site (scheme, host and port kept), in trying order."""
    parts = urlsplit(page_url)
    return tuple(urlunsplit((parts.scheme, parts.netloc, path, "", "")) for path in SUSPECT_PATHS)


def _base_url(tree: lxml.html.HtmlElement, page_url: str) -> str:
    for base in tree.iter("base"):
        href = (base.get("href") or "").strip()
        if href:
            resolved = urljoin(page_url, href)
            if urlsplit(resolved).scheme in ("http", "https"):
                return resolved
            break  # browsers use the first <base href> only
    return page_url


def _feed_link(link: lxml.html.HtmlElement, base: str) -> FeedLink | None:
    rel = (link.get("rel") or "").lower().split()
    kind = FEED_TYPES.get((link.get("type") or "").split(";")[0].strip().lower())
    href = (link.get("href") or "").strip()
    if "alternate" not in rel or kind is None or not href:
        return None
    url = urljoin(base, href)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    title = " ".join((link.get("title") or "").split()) or None
    comments = bool(_COMMENTS_TITLE.search(title or "") or _COMMENTS_PATH.search(parts.path))
    return FeedLink(url=urlunsplit(parts._replace(fragment="")), type=kind, title=title,
                    comments=comments)
