"""Loopback news sites for end-to-end tests, built from real fixtures and the seed texts.

- a French site (127.0.0.2) with an RSS feed whose articles are pages built around the five
  seed texts (relevant) and real English news pages (not relevant);
- a site (127.0.0.3) serving a real RSS capture whose links are rewritten to point at itself,
  its articles real English news pages;
- a broken site (127.0.0.4): malformed XML, an HTML page instead of a feed, 404, 500, a body
  that never ends, an endless slow trickle, a redirect loop.
"""

from __future__ import annotations

import html
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from tests.conftest import FIXTURES, SEEDS
from tests.httpserver import Drop, Endless, LoopbackServer, Redirect, Reply, Trickle

RSS = "application/rss+xml; charset=utf-8"
HTML = "text/html; charset=utf-8"


def seed_page(title: str, paragraphs: list[str]) -> bytes:
    """A news page as outlets make them: navigation, the article, a footer."""
    body = "\n".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    return f"""<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">
<title>{html.escape(title)} | Le Site</title>
<meta property="article:published_time" content="2024-05-02T09:30:00+00:00">
</head><body><header><nav><a href="/">Accueil</a> <a href="/sport">Sport</a>
<a href="/economie">Économie</a></nav></header>
<main><article><h1>{html.escape(title)}</h1>{body}</article></main>
<footer><p>© Le Site 2024. Tous droits réservés.</p><a href="/contact">Contact</a></footer>
</body></html>""".encode()


def seed_article(path: Path) -> tuple[str, list[str]]:
    """The seed text split into a title (its first line, cut) and paragraphs."""
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line]
    title = lines[0][:120].rsplit(" ", 1)[0] if len(lines[0]) > 120 else lines[0]
    return title, lines


def rss(items: list[dict], *, link: str) -> bytes:
    now = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    parts = []
    for index, item in enumerate(items):
        when = format_datetime(now - timedelta(hours=index))
        link_xml = f"<link>{html.escape(item['link'])}</link>" if item.get("link") else ""
        date_xml = "" if item.get("undated") else f"<pubDate>{when}</pubDate>"
        parts.append(f"""<item><title>{html.escape(item["title"])}</title>{link_xml}
<guid isPermaLink="false">{html.escape(item["guid"])}</guid>{date_xml}
<description>{html.escape(item.get("summary", ""))}</description></item>""")
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Le Site</title><link>{html.escape(link)}</link>
<description>Actualités</description>{"".join(parts)}</channel></rss>""".encode()


@dataclass(frozen=True)
class LargeFeed:
    body: bytes  # RSS, its items in shuffled order
    newest_first: list[str]  # the GUIDs of the items with text, newest first
    empty: list[str]  # the GUIDs of the items with neither link nor text


def large_feed(count: int, *, empty: Callable[[int], bool] = lambda index: False,
               link: Callable[[int], str | None] = lambda index: None) -> LargeFeed:
    """An RSS feed of `count` generated items listed in a shuffled order, item i dated i minutes
    before the newest (so "newest first" is the dates', not the file's): a bare `<guid>` when
    `empty(i)`, else a title and a summary, and a link when `link(i)` gives one."""
    now = datetime(2024, 5, 2, 10, 0, tzinfo=UTC)
    items, newest_first, bare = [], [], []
    for index in range(count):
        if empty(index):
            items.append(f"<item><guid>e{index}</guid></item>")
            bare.append(f"e{index}")
            continue
        url = link(index)
        link_xml = f"<link>{html.escape(url)}</link>" if url else ""
        items.append(f"""<item><title>Dépêche {index}</title>{link_xml}<guid>d{index}</guid>
<pubDate>{format_datetime(now - timedelta(minutes=index))}</pubDate><description>Le résumé de
la dépêche numéro {index}, sur le port et les marchés.</description></item>""")
        newest_first.append(f"d{index}")
    random.Random(count).shuffle(items)
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Le Fil</title><link>http://127.0.0.1/</link>
<description>Tout le fil</description>{"".join(items)}</channel></rss>""".encode()
    return LargeFeed(body, newest_first, bare)


@dataclass
class Sites:
    news: LoopbackServer
    atom: LoopbackServer
    broken: LoopbackServer
    relevant_links: list[str] = field(default_factory=list)
    other_links: list[str] = field(default_factory=list)
    atom_links: list[str] = field(default_factory=list)
    seed_paragraphs: dict[str, list[str]] = field(default_factory=dict)
    failing_pages: dict[str, str] = field(default_factory=dict)

    def feeds(self) -> list[dict]:
        good = [
            {"url": self.news.url("/rss.xml"), "name": "Le Site", "lang": "fr", "tags": ["test"]},
            {"url": self.atom.url("/comic.rss"), "name": "Real capture", "lang": "en"},
        ]
        broken = [{"url": self.broken.url(path), "name": f"broken {path}"} for path in BROKEN_PATHS]
        return good + broken

    def close(self) -> None:
        for server in (self.news, self.atom, self.broken):
            server.close()


BROKEN_PATHS = {
    "/malformed.xml": "not-a-feed",
    "/home.html": "not-a-feed",
    "/missing.xml": "http-404",
    "/error.xml": "http-500",
    "/endless.xml": "too-large",
    "/trickle.xml": "timeout",
    "/loop.xml": "too-many-redirects",
}


def real_english_pages(count: int) -> list[Path]:
    pages = sorted((FIXTURES / "articles").glob("aeb-*.html"))
    return pages[:count]


def build_sites(*, page_delay: float = 0.0) -> Sites:
    news, atom, broken = (LoopbackServer(f"127.0.0.{n}") for n in (2, 3, 4))
    sites = Sites(news, atom, broken)

    items = []
    for index, seed in enumerate(SEEDS):
        title, paragraphs = seed_article(seed)
        path = f"/article/seed-{index}.html"
        # A byline of its own: the page is the outlet's story, not a copy of the stored seed.
        page = seed_page(title, [f"Par la rédaction, dépêche {index}."] + paragraphs)
        news.route(path, Reply(page, content_type=HTML, delay=page_delay))
        link = news.url(path) + "?utm_source=rss"
        sites.relevant_links.append(link)
        sites.seed_paragraphs[link] = paragraphs
        items.append(
            {"title": title, "link": link, "guid": f"seed-{index}", "summary": paragraphs[0][:200]}
        )
    for index, page in enumerate(real_english_pages(3)):
        path = f"/world/{page.stem}.html"
        news.route(path, Reply(page.read_bytes(), content_type=HTML, delay=page_delay))
        link = news.url(path)
        sites.other_links.append(link)
        items.append(
            {
                "title": f"World news {index}",
                "link": link,
                "guid": page.stem,
                "summary": "International news.",
            }
        )
    items.append(
        {"title": "Une brève sans lien", "guid": "no-link", "summary": "Le Maroc et la météo."}
    )
    items.append(
        {
            "title": "Lien javascript",
            "link": "javascript:alert(1)",
            "guid": "js",
            "summary": "Rien.",
        }
    )
    # Pages that fail: the item keeps the feed's summary and says why.
    news.route("/article/empty.html", Reply(seed_page("Vide", []), content_type=HTML))
    for path, guid in (("/article/gone.html", "gone"), ("/article/empty.html", "empty")):
        link = news.url(path)
        sites.failing_pages[link] = guid
        items.append({"title": f"Page {guid}", "link": link, "guid": guid,
                      "summary": f"Résumé de la page {guid}."})
    news.route(
        "/rss.xml", Reply(rss(items, link=news.url("/")), content_type=RSS, conditional=True)
    )

    # A real RSS capture (with its byte-order mark), its links pointed at the loopback site.
    capture = (FIXTURES / "feeds" / "rsparser" / "donthitsave.xml").read_bytes()
    capture = capture.replace(b"https://donthitsave.com", atom.base_url.encode())
    pages = real_english_pages(100)[3:]  # not the news site's pages: other stories
    for index, link in enumerate(dict.fromkeys(re.findall(rb"<link>([^<]+)</link>", capture))):
        link_text = link.decode()
        path = link_text.removeprefix(atom.base_url)
        if path:
            page = pages[index % len(pages)]
            atom.route(path, Reply(page.read_bytes(), content_type=HTML))
            sites.atom_links.append(link_text)
    atom.route("/comic.rss", Reply(capture, content_type="application/rss+xml",
                                   conditional=True))

    broken.route(
        "/malformed.xml", Reply(b"<?xml version='1.0'?><rss><channel><title>x", content_type=RSS)
    )
    broken.route("/home.html", Reply(seed_page("Accueil", ["Bienvenue."]), content_type=HTML))
    broken.route("/error.xml", Reply(b"oops", status=500))
    broken.route("/endless.xml", Endless(content_type=RSS))
    broken.route("/trickle.xml", Trickle(interval=0.2))
    broken.route("/loop.xml", Redirect("/loop2.xml"))
    broken.route("/loop2.xml", Redirect("/loop.xml"))
    broken.route("/drop.xml", Drop())
    return sites



@dataclass
class BulkSite:
    server: LoopbackServer
    feed_urls: list[str]
    links: list[str]
    relevant_links: list[str]

    @property
    def feed_url(self) -> str:
        return self.feed_urls[0]


def build_bulk_site(host: str, count: int, *, page_delay: float = 0.0,
                    feeds: int = 1) -> BulkSite:
    """`count` entries in `feeds` feeds (consecutive runs of entries); every other page is a
    seed text (relevant), the others a real English news page (not relevant; once those run
    out, a written one). Every page is its own story. Pages answer after `page_delay` seconds."""
    server = LoopbackServer(host)
    english = real_english_pages(100)
    items, links, relevant = [], [], []
    for index in range(count):
        path = f"/news/{index}.html"
        if index % 2 == 0:
            title, paragraphs = seed_article(SEEDS[(index // 2) % len(SEEDS)])
            title = f"{title} ({index})"
            page = seed_page(title, [f"Dépêche {index}."] + paragraphs)
            relevant.append(server.url(path))
        elif index // 2 < len(english):
            title, page = f"World {index}", english[index // 2].read_bytes()
        else:
            title = f"World {index}"
            page = seed_page(title, [f"Report {index}. " + _FILLER] * 3)
        server.route(path, Reply(page, content_type=HTML, delay=page_delay))
        links.append(server.url(path))
        items.append({"title": title, "link": server.url(path), "guid": f"bulk-{index}"})
    feed_urls = []
    size = -(-count // feeds)
    for number in range(feeds):
        path = "/bulk.xml" if number == 0 else f"/bulk-{number}.xml"
        server.route(path, Reply(rss(items[number * size:(number + 1) * size],
                                     link=server.url("/")), content_type=RSS, conditional=True))
        feed_urls.append(server.url(path))
    return BulkSite(server, feed_urls, links, relevant)


@dataclass
class ManyFeeds:
    """`count` small feeds spread over loopback hosts; see `build_many_feeds`."""

    servers: list[LoopbackServer]
    feed_urls: list[str]  # feed i is feed_urls[i]
    feed_paths: list[tuple[LoopbackServer, str]]
    entries: dict[int, list[dict]]  # feed index -> its entries (title, link, guid)
    relevant_links: set[str] = field(default_factory=set)
    pages: dict[str, tuple[LoopbackServer, str]] = field(default_factory=dict)

    def feeds(self) -> list[dict]:
        return [{"url": url, "name": f"feed {i:03d}", "lang": "fr"}
                for i, url in enumerate(self.feed_urls)]

    def requests(self, index: int) -> int:
        """How many times feed `index` was fetched so far."""
        server, path = self.feed_paths[index]
        return len(server.requests(path))

    def links(self) -> set[str]:
        return {entry["link"] for entries in self.entries.values() for entry in entries}

    def add_entry(self, index: int, tag: str) -> None:
        """Publish one more entry in feed `index` (its body, hence its ETag, changes)."""
        server, _ = self.feed_paths[index]
        self._entry(index, server, tag)
        self._publish(index)

    def _entry(self, index: int, server: LoopbackServer, tag: str) -> None:
        path = f"/page/{index}-{tag}.html"
        if (index + len(tag)) % 7 == 0:  # about one in seven is about Moroccan AI/cyber
            seed = SEEDS[index % len(SEEDS)]
            title, paragraphs = seed_article(seed)
            body = seed_page(f"{title} ({index}-{tag})", [f"Dépêche {index}-{tag}."]
                             + paragraphs)
            self.relevant_links.add(server.url(path))
        else:
            title = f"Weather and markets {index}-{tag}"
            body = seed_page(title, [f"Report {index}-{tag}. " + _FILLER] * 3)
        server.route(path, Reply(body, content_type=HTML))
        self.pages[server.url(path)] = (server, path)
        self.entries.setdefault(index, []).append(
            {"title": title, "link": server.url(path), "guid": f"{index}-{tag}"})

    def _publish(self, index: int) -> None:
        server, path = self.feed_paths[index]
        server.route(path, Reply(rss(self.entries[index], link=server.url("/")),
                                 content_type=RSS, conditional=True))

    def close(self) -> None:
        for server in self.servers:
            server.close()


_FILLER = ("The harbour opened early under a grey sky while traders compared the prices of "
           "grain, fish and fuel, and the weather service announced a mild week with light "
           "winds along the coast and a little rain inland by the weekend.")


def build_many_feeds(count: int, *, hosts: int = 20, first_host: int = 10) -> ManyFeeds:
    """`count` feeds of one or two entries each over `hosts` loopback addresses
    (127.0.0.<first_host>...); every page is tiny, about one in seven is relevant."""
    servers = [LoopbackServer(f"127.0.0.{first_host + n}") for n in range(hosts)]
    many = ManyFeeds(servers, [], [], {})
    for index in range(count):
        server = servers[index % hosts]
        path = f"/feed/{index}.xml"
        many.feed_urls.append(server.url(path))
        many.feed_paths.append((server, path))
        for tag in ("a", "b")[: 1 + index % 2]:
            many._entry(index, server, tag)
        many._publish(index)
    return many
