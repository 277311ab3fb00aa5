"""The Atom feed of relevant items. Pure.

In: the feed's own URL, the inspector's base URL and item rows (newest first, as the listings
give them). Out: an Atom 1.0 document as UTF-8 bytes (RFC 4287: feed id, title, updated, author,
self link; per entry a stable id, title, updated, published, links, categories and a plain-text
summary). Built with an XML library, so every stored text is escaped; characters XML 1.0 cannot
carry are dropped.
"""

from __future__ import annotations

import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

ATOM_NS = "http://www.w3.org/2005/Atom"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(value: str | None) -> str:
    return _NOT_XML.sub("", value or "")


def entry_id(item: dict) -> str:
    """A stable id for an item: a UUID from its URL (or its row id when it has no URL)."""
    key = item.get("url") or f"monitor-item:{item['id']}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, key)}"


def atom_feed(*, self_url: str, base_url: str, items: list[dict], title: str,
              now: datetime | None = None) -> bytes:
    """The document; `base_url` ends with '/', item pages are ``{base_url}items/{id}``."""
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        element = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            element.text = xml_text(text)
        return element

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, self_url)}")
    sub(feed, "title", title)
    newest = max((item["fetched_at"] for item in items), default=None)
    sub(feed, "updated", newest or (now or datetime.now(UTC)).isoformat())
    author = sub(feed, "author")
    sub(author, "name", "monitor")
    sub(feed, "link", rel="self", type="application/atom+xml", href=xml_text(self_url))
    sub(feed, "link", rel="alternate", type="text/html",
        href=xml_text(f"{base_url}items?relevant=1"))
    sub(feed, "generator", "monitor")
    for item in items:
        entry = sub(feed, "entry")
        sub(entry, "id", entry_id(item))
        sub(entry, "title", item["title"] or "(untitled)", type="text")
        sub(entry, "updated", item["fetched_at"])
        if item.get("published"):
            sub(entry, "published", item["published"])
        inspector = f"{base_url}items/{item['id']}"
        sub(entry, "link", rel="alternate", type="text/html",
            href=xml_text(item.get("url") or inspector))
        sub(entry, "link", rel="related", type="text/html", href=xml_text(inspector))
        if item.get("feed"):
            source = sub(entry, "source")
            sub(source, "title", item["feed"])
        for topic in item.get("topics") or []:
            sub(entry, "category", term=xml_text(topic))
        summary = (item.get("text") or "").strip()
        if summary:
            sub(entry, "summary", summary, type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)
