"""OPML subscription lists: read one into feed outlines, write the configured feeds as one.

In (`read_opml`): the bytes of an OPML 1.0 or 2.0 file and its name (for messages). Out:
`OpmlOutlines`, the feed outlines (URL, title, folder tags, language, line) and the outlines that
cannot be feeds, each with its line; raises `ConfigError` (file, line) when the bytes are not
OPML. In (`write_opml`): `FeedSpec`s. Out: OPML 2.0 bytes. Pure: no network, no files.

Reading is defensive: lxml with entity resolution, DTD loading and network access off, so an
export carrying ``<!ENTITY ...>`` tricks (XXE, billion laughs) yields no file contents and no
requests. Readers disagree on details, so any outline with an ``xmlUrl`` (any letter case) is a
feed whatever its ``type`` (missing, "rss", "atom", "link" ...), and an outline without one that
holds other outlines is a folder whose name (``title``, else ``text``) becomes a tag of every
feed inside it, nested folders giving several tags.

Writing: feeds in a folder named after their first tag (what Feedly, Miniflux and FreshRSS show
as categories), in the order of feeds.yaml; every tag also in the OPML 2.0 ``category``
attribute, the language in ``language``; the settings OPML has no word for (interval, enabled)
in attributes of our own namespace, so an export imported again gives the same feeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime

from lxml import etree

from monitor.errors import ConfigError
from monitor.settings import FeedSpec

MONITOR_NS = "urn:x-monitor:opml"
_SAFE_PARSER = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


@dataclass(frozen=True)
class OpmlFeed:
    url: str  # as written in xmlUrl (stripped); not checked here
    title: str | None  # title, else text
    tags: tuple[str, ...]  # enclosing folders, outermost first, then the category attribute
    lang: str | None  # the language attribute's primary subtag, when two letters
    interval: str | None  # our own attribute, when the file came from `write_opml`
    enabled: bool
    line: int


@dataclass(frozen=True)
class OpmlProblem:
    line: int
    problem: str


@dataclass(frozen=True)
class OpmlOutlines:
    title: str | None  # head/title
    feeds: tuple[OpmlFeed, ...]  # in document order
    problems: tuple[OpmlProblem, ...]  # outlines that are neither a feed nor a folder


def read_opml(content: bytes, *, source: str) -> OpmlOutlines:
    """The feed outlines of an OPML file; `source` names it in errors."""
    try:
        root = etree.fromstring(content, etree.XMLParser(**_SAFE_PARSER))
    except etree.XMLSyntaxError as exc:
        raise ConfigError(
            f"not an OPML file: XML syntax error ({exc.msg}); export the subscriptions again "
            "as OPML from the feed reader", path=source, line=exc.lineno or None,
        ) from None
    tag = etree.QName(root).localname if isinstance(root.tag, str) else ""
    if tag.lower() != "opml":
        raise ConfigError(
            f"not an OPML file: the root element is <{tag}>, not <opml>; give the file the "
            "feed reader exported (an RSS or Atom feed is added with `monitor feeds add URL`)",
            path=source, line=root.sourceline,
        )
    body = next((child for child in root if _name(child) == "body"), None)
    if body is None:
        raise ConfigError("not an OPML file: <opml> has no <body>", path=source,
                          line=root.sourceline)
    head_title = root.findtext("head/title")
    feeds: list[OpmlFeed] = []
    problems: list[OpmlProblem] = []
    _walk(body, (), feeds, problems)
    return OpmlOutlines(title=(head_title or "").strip() or None, feeds=tuple(feeds),
                        problems=tuple(problems))


def write_opml(feeds: Iterable[FeedSpec], *, title: str, created: datetime) -> bytes:
    """OPML 2.0 for `feeds`, in their order: each run of feeds with the same first tag in a
    folder of that name (readers merge folders of the same name), feeds without tags at the
    top level."""
    root = etree.Element("opml", version="2.0", nsmap={"monitor": MONITOR_NS})
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = title
    etree.SubElement(head, "dateCreated").text = format_datetime(created)
    body = etree.SubElement(root, "body")
    folder, folder_tag = body, None
    for feed in feeds:
        first = feed.tags[0] if feed.tags else None
        if first != folder_tag:
            folder, folder_tag = body, first
            if first is not None:
                folder = etree.SubElement(body, "outline", text=first, title=first)
        outline = etree.SubElement(folder, "outline", type="rss", text=feed.name,
                                   title=feed.name, xmlUrl=feed.url)
        if feed.tags:
            outline.set("category", ",".join(feed.tags))
        if feed.lang:
            outline.set("language", feed.lang)
        if feed.interval is not None:
            outline.set(f"{{{MONITOR_NS}}}interval", f"{feed.interval:g}")
        if not feed.enabled:
            outline.set(f"{{{MONITOR_NS}}}enabled", "false")
    etree.indent(root, space="  ")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _name(element: etree._Element) -> str:
    return etree.QName(element).localname.lower() if isinstance(element.tag, str) else ""


def _attribute(element: etree._Element, name: str) -> str | None:
    """An attribute in any letter case (xmlUrl, xmlurl, XMLURL are all seen in exports)."""
    for key, value in element.attrib.items():
        if isinstance(key, str) and key.lower() == name and value.strip():
            return value.strip()
    return None


def _walk(parent: etree._Element, folders: tuple[str, ...], feeds: list[OpmlFeed],
          problems: list[OpmlProblem]) -> None:
    for outline in parent:
        if _name(outline) != "outline":
            continue
        label = _attribute(outline, "title") or _attribute(outline, "text")
        url = _attribute(outline, "xmlurl")
        if url is not None:
            feeds.append(_feed(outline, url, label, folders))
        elif any(_name(child) == "outline" for child in outline):
            _walk(outline, folders + (label,) if label else folders, feeds, problems)
        elif _attribute(outline, "htmlurl") or _attribute(outline, "url"):
            problems.append(OpmlProblem(outline.sourceline, "a link without xmlUrl (not a feed)"))
        else:
            problems.append(OpmlProblem(outline.sourceline, "an outline without xmlUrl"))


def _feed(outline: etree._Element, url: str, label: str | None,
          folders: tuple[str, ...]) -> OpmlFeed:
    categories = (part.strip() for category in (_attribute(outline, "category") or "").split(",")
                  for part in category.split("/"))
    by_key: dict[str, str] = {}  # the first spelling of a tag wins ("Morocco", "/morocco")
    for tag in (*folders, *categories):
        if tag:
            by_key.setdefault(tag.casefold(), tag)
    language = (_attribute(outline, "language") or "").split("-")[0].split("_")[0].lower()
    return OpmlFeed(
        url=url,
        title=label,
        tags=tuple(by_key.values()),
        lang=language if len(language) == 2 and language.isalpha() else None,
        interval=outline.get(f"{{{MONITOR_NS}}}interval"),
        enabled=outline.get(f"{{{MONITOR_NS}}}enabled", "true").lower() != "false",
        line=outline.sourceline,
    )
