"""The messages of an alert: one or a few items as they arrive, or a digest grouped by topic.
Pure.

In: the alert's name, its entries' items (rows of `store.outbox.AlertItem`: id, title, url,
feed, published, lang, score, topics, matches), the inspector's address (``web.base_url``) and,
for a digest, its time. Out: a `Message` with a title, a plain text and an HTML body (every
stored text escaped; right-to-left titles marked ``dir="auto"``). An item says its title, its
source, its date, its topics, the terms that matched and its links (the inspector's page when
``web.base_url`` is set, and the article). A digest lists the items under each of their topics
(`report.digest.build_digest`, as `monitor digest` does).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from monitor.report.digest import build_digest, http_url

TERMS_SHOWN = 8


@dataclass(frozen=True)
class Message:
    title: str
    text: str
    html: str


def immediate(alert: str, items: Sequence[dict], base_url: str | None) -> Message:
    """One message for `items` (one, or the few that arrived since the last send)."""
    title = (f"[{alert}] {_one_line(items[0]['title']) or '(untitled)'}" if len(items) == 1
             else f"[{alert}] {len(items)} relevant items")
    text = "\n\n".join(_item_text(item, base_url) for item in items)
    html = _page(title, "".join(_item_html(item, base_url, "p") for item in items))
    return Message(title, text + "\n", html)


def digest(alert: str, items: Sequence[dict], base_url: str | None, at: datetime) -> Message:
    """The digest of `items` (best score first), grouped by topic."""
    grouped = build_digest(items, at.date())
    title = (f"[{alert}] digest of {at:%Y-%m-%d %H:%M %Z}: {grouped.count} relevant "
             f"item{'s' if grouped.count != 1 else ''}")
    text, html = [], []
    for topic, entries in grouped.topics:
        text.append(f"== {topic} ({len(entries)}) ==\n\n"
                    + "\n\n".join(_item_text(item, base_url) for item in entries))
        html.append(f"<h2>{escape(topic)} ({len(entries)})</h2><ul>"
                    + "".join(_item_html(item, base_url, "li") for item in entries) + "</ul>")
    return Message(title, "\n\n".join(text) + "\n", _page(title, "".join(html)))


def check_message(alert: str) -> Message:
    """What `monitor alerts test` sends."""
    title = f"[{alert}] test message from monitor"
    text = (f"This is a test of the alert {alert}: its relevant items will be announced "
            "here.")
    return Message(title, text + "\n", _page(title, f"<p>{escape(text)}</p>"))


def inspector_link(item: dict, base_url: str | None) -> str | None:
    return f"{base_url}items/{item['id']}" if base_url else None


def _item_text(item: dict, base_url: str | None) -> str:
    lines = [_one_line(item["title"]) or "(untitled)", " · ".join(_facts(item))]
    if terms := _terms(item):
        lines.append(f"matched: {', '.join(terms)}")
    if link := inspector_link(item, base_url):
        lines.append(f"inspector: {link}")
    if url := http_url(item["url"]):
        lines.append(f"article: {url}")
    return "\n".join(lines)


def _item_html(item: dict, base_url: str | None, tag: str) -> str:
    lang = f' lang="{escape(item["lang"])}"' if item["lang"] else ""
    title = f'<strong dir="auto"{lang}>{escape(_one_line(item["title"]) or "(untitled)")}</strong>'
    parts = [title, escape(" · ".join(_facts(item)))]
    if terms := _terms(item):
        parts.append("matched: " + escape(", ".join(terms)))
    # the addresses written out: the text part of an e-mail is made from this HTML
    if link := inspector_link(item, base_url):
        parts.append(f'inspector: <a href="{escape(link)}">{escape(link)}</a>')
    if url := http_url(item["url"]):
        parts.append(f'article: <a href="{escape(url)}" rel="noopener noreferrer">'
                     f"{escape(url)}</a>")
    return f"<{tag}>" + "<br>".join(parts) + f"</{tag}>"


def _facts(item: dict) -> list[str]:
    published = item["published"]
    return [item["feed"] or "corpus",
            f"{published:%Y-%m-%d %H:%M} UTC" if published else "date unknown",
            "topics: " + (", ".join(item["topics"]) or "-"), f"score {item['score']:g}"]


def _terms(item: dict) -> list[str]:
    counts = Counter(match["term"] for match in item["matches"] or [])
    return [term for term, _ in counts.most_common(TERMS_SHOWN)]


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
            f"</head><body><h1>{escape(title)}</h1>{body}</body></html>\n")
