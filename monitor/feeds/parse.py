"""Parse a fetched feed into entries.

In: the body bytes of one fetched feed, the URL it was fetched from and the HTTP response
headers (only ``Content-Type`` matters: its charset takes part in decoding, as RFC 3023 says).
Out: ``ParsedFeed`` with its ``Entry`` tuple, all text plain and every link absolute http(s);
raises ``NotAFeed`` when the bytes are not RSS, Atom, RDF or JSON Feed.

Pure: no network, no file system, no database. feedparser only ever sees the bytes, wrapped in
a ``BytesIO`` (given a ``str`` or ``bytes`` it would treat them as a URL or a file name).
JSON Feed (versions 1 and 1.1), which feedparser 6.0 does not read, is parsed here with ``json``.

Where the line is: a document from which feedparser reads at least one entry is a feed, even
when it is ill-formed (text before ``<?xml``, undefined entities, a truncated tail ...), and so
is a well-formed RSS/Atom/RDF document without entries; the reason for any leniency is kept in
``ParsedFeed.warning`` (a few invalid bytes in a UTF-8 document among them: see
``feeds.charset``). Malformed XML that yields no entry (a truncated or server-error body
that starts like a feed), an HTML page, other XML, other JSON, or no body are ``NotAFeed``.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit
from xml.sax import SAXParseException

import feedparser

from monitor.errors import NotAFeed
from monitor.extract import http_codec
from monitor.feeds.charset import utf8_with_replacement
from monitor.feeds.htmltext import BLOCK_TAGS, html_text


@dataclass(frozen=True)
class Entry:
    guid: str  # entry id, else link, else a stable hash of title+summary+published
    link: str | None  # absolute http(s) URL of the article; None when unusable
    link_problem: str | None  # None, "no-link", "unsafe-scheme" or "malformed-link"
    title: str  # plain text, whitespace collapsed
    summary: str  # plain text from summary/description, else content
    published: datetime | None  # aware UTC: published, else updated
    author: str | None


@dataclass(frozen=True)
class ParsedFeed:
    title: str
    link: str | None  # the site's home page
    version: str  # feedparser's version ("rss20", "atom10" ...) or "json1" / "json11"
    entries: tuple[Entry, ...]
    encoding: str | None
    warning: str | None  # why the feed is ill-formed, when it still parsed
    ttl_minutes: int | None  # RSS <ttl>, else sy:updatePeriod / sy:updateFrequency


_WHAT_TO_DO = "check the feed URL; `monitor feeds check URL` shows what the server sends"
_FOLLOWED_SCHEMES = frozenset({"http", "https"})
_URL_NOISE = str.maketrans("", "", "\t\r\n")  # removed by browsers (WHATWG URL standard)
_BAD_HOST = re.compile(r"[\x00-\x20<>\"{}|\\^`]")
_HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_SPACES = re.compile(r"\s+")
_LINK_LIKE_GUID = re.compile(r"\s*(?:https?:|/)", re.I)
_HTML_DOCTYPE = re.compile(r"<!doctype\s+html", re.I)
_FIRST_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)")
_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_HTML_ROOTS = frozenset(BLOCK_TAGS | {"html", "head", "body", "span", "a", "b", "i", "meta"})
_SY_PERIOD_MINUTES = dict(hourly=60, daily=1440, weekly=10080, monthly=43200, yearly=525600)


def parse_feed(content: bytes, *, url: str, headers: Mapping[str, str] | None = None) -> ParsedFeed:
    """Parse feed bytes fetched from ``url``; relative links are resolved against ``url``."""
    content_type = _header(headers, "content-type")
    start = content.lstrip(b"\xef\xbb\xbf \t\r\n")
    if not start.strip(b"\x00"):
        raise _not_a_feed(url, "an empty body" if not content else "a body of only whitespace")
    if start[:1] in (b"{", b"["):
        return _parse_json_feed(content, url=url, content_type=content_type)
    return _parse_xml_feed(content, url=url, content_type=content_type)


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value.strip()
    return None


def _not_a_feed(url: str, found: str) -> NotAFeed:
    return NotAFeed(f"{url}: not a feed, found {found}; {_WHAT_TO_DO}")


# --- RSS, Atom, RDF (feedparser) -----------------------------------------------------------


def _run_feedparser(content: bytes, content_type: str | None, url: str) -> Any:
    """feedparser on bytes only, HTML neither sanitised nor rewritten (only its text is kept).

    The feed URL is given as base only when the document uses xml:base (feedparser needs an
    absolute base to apply a relative xml:base). Otherwise relative links stay relative here
    and ``_absolute_link`` joins them, so that a bare RSS ``<guid>12345</guid>`` stays
    "12345" instead of becoming a made-up link under the feed URL."""
    headers = {"content-type": content_type} if content_type else {}
    if b"xml:base" in content:
        headers = {"content-type": content_type or "application/xml", "content-location": url}
    return feedparser.parse(
        io.BytesIO(content),
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )


def _parse_xml_feed(content: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    content, repaired = utf8_with_replacement(content, content_type)
    try:
        result = _run_feedparser(content, content_type, url)
    except Exception as exc:  # feedparser crashes on some garbage (e.g. a non-UTF-8 prolog)
        raise _not_a_feed(
            url, f"bytes feedparser cannot read ({type(exc).__name__}: {exc})"
        ) from exc
    version = result.get("version") or ""
    raw_entries = result.get("entries") or []
    problem = result.get("bozo_exception") if result.get("bozo") else None
    # feedparser puts its own <?xml ...?> line in front when the document has none.
    line_shift = 0 if content.lstrip(b"\xef\xbb\xbf").startswith(b"<?xml") else 1
    if not raw_entries and (not version or isinstance(problem, SAXParseException)):
        found = _describe_non_feed(content, result.get("encoding"), problem, line_shift)
        raise _not_a_feed(url, found + (", and no entries could be read" if version else ""))
    warning = _warning_text(problem, line_shift) if problem is not None else None
    if repaired:
        replaced = f"{repaired} invalid UTF-8 byte sequence(s) replaced with U+FFFD"
        warning = f"{replaced}; {warning}" if warning else replaced
    if not version:
        warning = warning or "no RSS, Atom or RDF root element; entries read anyway"
    feed = result.get("feed") or {}
    return ParsedFeed(
        title=_text_of(feed, "title"),
        link=_absolute_link(feed.get("link"), url)[0],
        version=version or "unknown",
        entries=tuple(_xml_entry(raw, url) for raw in raw_entries),
        encoding=result.get("encoding") or None,
        warning=warning,
        ttl_minutes=_ttl_minutes(feed),
    )


def _xml_entry(raw: dict[str, Any], feed_url: str) -> Entry:
    raw_link = raw.get("link")
    guid = (raw.get("id") or "").strip()
    # An RSS <guid> without isPermaLink="false" counts as the link (RSS 2.0 default);
    # only believe it when it looks like a URL, not "12345" or "post-7@site".
    guid_as_link = raw.get("guidislink") and raw_link and raw_link.strip() == guid
    if guid_as_link and not _LINK_LIKE_GUID.match(guid):
        raw_link = None
    link, link_problem = _absolute_link(raw_link, feed_url)
    title = _text_of(raw, "title")
    summary = _text_of(raw, "summary")  # "" when feedparser copied it from the content
    if not summary:
        for part in dict.get(raw, "content") or ():
            summary = _plain_text(part.get("value"), part.get("type"))
            if summary:
                break
    published = _utc(dict.get(raw, "published_parsed")) or _utc(dict.get(raw, "updated_parsed"))
    return _entry(guid, raw_link, link, link_problem, title, summary, published,
                  _collapse(raw.get("author")) or None)


def _text_of(node: dict[str, Any], key: str) -> str:
    """Plain text of a feedparser text construct, read from its ``<key>_detail``."""
    detail = dict.get(node, f"{key}_detail")
    return _plain_text(detail.get("value"), detail.get("type")) if detail else ""


def _utc(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime(*parsed[:6], tzinfo=UTC)
    except (TypeError, ValueError, OverflowError):
        return None  # an impossible date (feedparser passes some through)


def _ttl_minutes(feed: Mapping[str, Any]) -> int | None:
    ttl = _positive_int(feed.get("ttl"))
    if ttl is not None:
        return ttl
    period = _SY_PERIOD_MINUTES.get((feed.get("sy_updateperiod") or "").strip().lower())
    if period is None:
        return None
    frequency = _positive_int(feed.get("sy_updatefrequency")) or 1
    return max(1, round(period / frequency))


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _warning_text(problem: BaseException, line_shift: int) -> str:
    if isinstance(problem, SAXParseException):
        return f"{_xml_error(problem, line_shift)} (read with the lenient parser)"
    return (str(problem) or type(problem).__name__)[:300]


def _xml_error(problem: SAXParseException, line_shift: int) -> str:
    line = max(1, problem.getLineNumber() - line_shift)
    return f"malformed XML at line {line}: {problem.getMessage()}"


def _describe_non_feed(content: bytes, encoding: str | None, problem: Any, line_shift: int) -> str:
    if content[:2] == b"\x1f\x8b":
        return "gzip-compressed bytes (the body was not decompressed)"
    sample = content[:8192].removeprefix(b"\xef\xbb\xbf")
    try:
        head = sample.decode(encoding or "utf-8", "replace")
    except LookupError:
        head = sample.decode("utf-8", "replace")
    head = head.lstrip("\ufeff \t\r\n")
    if not head.startswith("<"):
        return f"a body that is neither XML nor JSON (starting {head[:40]!r})"
    root_match = _FIRST_ELEMENT.search(_COMMENT.sub("", head))
    root = root_match.group(1) if root_match else None
    if _HTML_DOCTYPE.search(head[:1024]) or (root and root.lower() == "html"):
        return "an HTML page"
    if root and root.lower() in _HTML_ROOTS:
        return f"an HTML fragment (starting with <{root}>)"
    if isinstance(problem, SAXParseException):
        return _xml_error(problem, line_shift) + (f" (root element <{root}>)" if root else "")
    return f"an XML document whose root element is <{root}>, not RSS, Atom or RDF"


# --- JSON Feed (https://jsonfeed.org/version/1.1) ------------------------------------------


def _parse_json_feed(content: bytes, *, url: str, content_type: str | None) -> ParsedFeed:
    try:
        document = json.loads(content, strict=False)  # strict=False: raw control characters
    except UnicodeDecodeError:
        document = None
    except json.JSONDecodeError as exc:
        ending = content.rstrip()[-1:]
        what = "malformed JSON" if ending in (b"}", b"]") else "truncated JSON (no closing brace)"
        where = f"at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        raise _not_a_feed(url, f"{what} {where}") from exc
    if document is None:  # not UTF-8/16/32: try the HTTP charset, then Windows-1252
        charset = http_codec(content_type) or "windows-1252"
        try:
            document = json.loads(content.decode(charset, "replace"), strict=False)
        except (LookupError, json.JSONDecodeError) as exc:
            raise _not_a_feed(url, f"JSON that cannot be decoded ({exc})") from exc
    if not isinstance(document, dict) or not (
        "jsonfeed.org/version/" in str(document.get("version", ""))
        or isinstance(document.get("items"), list)
    ):
        shape = f"a {type(document).__name__}"
        if isinstance(document, dict):
            shape = "an object with keys " + ", ".join(sorted(map(str, document))[:5])
        what = f"JSON that is not a JSON Feed ({shape}; no jsonfeed.org version, no items)"
        raise _not_a_feed(url, what)
    version = str(document.get("version", ""))
    items = document.get("items")
    feed_author = _authors(document)
    return ParsedFeed(
        title=_collapse(_string(document.get("title"))),
        link=_absolute_link(_string(document.get("home_page_url")), url)[0],
        version="json11" if version.endswith("/1.1") else "json1",
        entries=tuple(_json_entry(item, url, feed_author) for item in _dicts(items)),
        encoding="utf-8",
        warning=None if isinstance(items, list) else "JSON Feed without an items list",
        ttl_minutes=None,
    )


def _json_entry(item: Mapping[str, Any], feed_url: str, feed_author: str | None) -> Entry:
    raw_link = _string(item.get("url")) or _string(item.get("external_url"))
    link, link_problem = _absolute_link(raw_link, feed_url)
    title = _collapse(_string(item.get("title")))
    summary = (
        _collapse(_string(item.get("summary")))
        or _collapse(_string(item.get("content_text")))
        or _plain_text(_string(item.get("content_html")), "text/html")
    )
    published = _iso_datetime(item.get("date_published")) or _iso_datetime(
        item.get("date_modified")
    )
    item_id = item.get("id")
    guid = str(item_id).strip() if isinstance(item_id, str | int) else ""
    return _entry(guid, raw_link, link, link_problem, title, summary, published,
                  _authors(item) or feed_author)


def _authors(node: Mapping[str, Any]) -> str | None:
    people = node.get("authors")  # 1.1
    if not isinstance(people, list):
        people = [node.get("author")]  # 1.0
    names = [_collapse(_string(person.get("name"))) for person in _dicts(people)]
    return ", ".join(name for name in names if name) or None


def _iso_datetime(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _dicts(values: Any) -> Iterable[Mapping[str, Any]]:
    """The objects in a JSON list; nothing when it is not a list."""
    return (
        (value for value in values if isinstance(value, dict)) if isinstance(values, list) else ()
    )


def _string(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# --- text, links, identity -----------------------------------------------------------------


def _collapse(text: str | None) -> str:
    return _SPACES.sub(" ", text).strip() if text else ""


def _plain_text(value: str | None, content_type: str | None) -> str:
    """HTML (or XHTML) to plain text with whitespace collapsed; other text only collapsed."""
    if not value:
        return ""
    return _collapse(html_text(value) if content_type in _HTML_TYPES else value)


def _absolute_link(raw: str | None, base: str) -> tuple[str | None, str | None]:
    """(absolute http(s) link, None) or (None, why there is no usable link)."""
    candidate = raw.strip().translate(_URL_NOISE) if raw else ""
    if not candidate:
        return None, "no-link"
    try:
        link = candidate if urlsplit(candidate).scheme else urljoin(base, candidate)
        parts = urlsplit(link)
        parts.port  # noqa: B018 -- raises ValueError on a port that is not a number
    except ValueError:
        return None, "malformed-link"
    if parts.scheme.lower() not in _FOLLOWED_SCHEMES:
        return None, "unsafe-scheme" if parts.scheme else "malformed-link"
    if not parts.hostname or _BAD_HOST.search(parts.hostname):
        return None, "malformed-link"
    return link, None


def _entry(guid: str, raw_link: str | None, link: str | None, link_problem: str | None,
           title: str, summary: str, published: datetime | None, author: str | None) -> Entry:
    """An Entry whose guid falls back to the link, the raw link, then a hash of the content."""
    return Entry(
        guid=guid or link or (raw_link or "").strip() or _content_hash(title, summary, published),
        link=link, link_problem=link_problem, title=title, summary=summary, published=published,
        author=author,
    )


def _content_hash(title: str, summary: str, published: datetime | None) -> str:
    stamp = published.isoformat() if published else ""
    digest = hashlib.sha256(f"{title}\n{summary}\n{stamp}".encode()).hexdigest()
    return f"sha256:{digest[:32]}"
