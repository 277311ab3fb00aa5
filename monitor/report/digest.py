"""The daily digest: one day's relevant items grouped by topic, as Markdown or HTML. Pure.

In: a UTC day and its relevant items, best score first (rows with id, title, url, feed,
published, lang, score, topics: `store.listings.relevant_items_kept_on`). Out: a `Digest` and
its text (`render_markdown`, `render_html`, every stored text escaped for its format). The day
is the day an item was kept (``fetched_at``, UTC), so each item lands in exactly one digest. An
item is listed under each of its topics (best score first); items without a topic come last,
under "other".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from html import escape
from urllib.parse import urlsplit

FORMATS = ("md", "html")
OTHER = "other"


@dataclass(frozen=True)
class Digest:
    day: date
    count: int
    topics: tuple[tuple[str, tuple[dict, ...]], ...]  # (topic, items), topics in order


def build_digest(rows: Iterable[dict], day: date) -> Digest:
    """`day`'s relevant items (`rows`, best score first, as the store lists them) grouped by
    topic."""
    groups: dict[str, list[dict]] = {}
    count = 0
    for item in rows:
        count += 1
        for topic in item["topics"] or [OTHER]:
            groups.setdefault(topic, []).append(item)
    order = sorted(groups, key=lambda t: (t == OTHER, t))
    return Digest(day=day, count=count,
                  topics=tuple((t, tuple(groups[t])) for t in order))


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def md_text(text: str | None) -> str:
    """Stored text as inert Markdown: specials escaped, on one line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join((text or "").split()))


def http_url(url: str | None) -> str | None:
    """`url` when it is an http(s) address (never javascript: or data: in a link), else None."""
    if url and urlsplit(url.strip()).scheme.lower() in ("http", "https"):
        return url.strip()
    return None


def md_url(url: str) -> str:
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29").replace("<", "%3C") \
        .replace(">", "%3E")


def render_markdown(digest: Digest) -> str:
    lines = [f"# Digest of {digest.day.isoformat()}", ""]
    if not digest.count:
        lines.append("No relevant item was kept this day.")
    else:
        lines.append(f"{digest.count} relevant item{'s' if digest.count != 1 else ''}.")
    for topic, entries in digest.topics:
        lines += ["", f"## {md_text(topic)} ({len(entries)})", ""]
        for item in entries:
            title = md_text(item["title"]) or "(untitled)"
            url = http_url(item["url"])
            head = f"[{title}]({md_url(url)})" if url else title
            source = md_text(item["feed"] or "corpus")
            lines.append(f"- {head} — {source}, score {item['score']:g}")
    return "\n".join(lines) + "\n"


def render_html(digest: Digest) -> str:
    title = f"Digest of {digest.day.isoformat()}"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{escape(title)}</title></head><body>", f"<h1>{escape(title)}</h1>"]
    parts.append(f"<p>{digest.count} relevant item{'s' if digest.count != 1 else ''}.</p>"
                 if digest.count else "<p>No relevant item was kept this day.</p>")
    for topic, entries in digest.topics:
        parts.append(f"<h2>{escape(topic)} ({len(entries)})</h2><ul>")
        for item in entries:
            lang = f' lang="{escape(item["lang"])}"' if item["lang"] else ""
            text = escape(item["title"] or "(untitled)")
            if http_url(item["url"]):
                text = (f'<a href="{escape(http_url(item["url"]))}" rel="noopener noreferrer">'
                        f"{text}</a>")
            parts.append(f'<li><span dir="auto"{lang}>{text}</span> — '
                         f"{escape(item['feed'] or 'corpus')}, score {item['score']:g}</li>")
        parts.append("</ul>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
