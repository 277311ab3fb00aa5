"""Article text from a fetched HTML page. In: page bytes (or str), URL, HTTP Content-Type.
Out: Article; raises NoText. Pure: no network, no files; the one outside input is the clock
htmldate reads to refuse dates after today.

``extract_article`` is a top-level function over picklable values so that a process pool can run
it (extraction of a pathological page can take long; the caller times it out and kills it).

Decoding (``decode_html``): a byte-order mark wins (it cannot be wrong), then the charset of the
HTTP Content-Type, then ``<meta charset>`` / ``http-equiv`` / XML declaration found anywhere in
the first 64 KiB (not only the first 1024 bytes: real pages put it later), then UTF-8 if the
bytes are valid UTF-8, then trafilatura's own guess (charset_normalizer). Legacy labels are read
as browsers read them (ISO-8859-1 and ASCII mean windows-1252). Labels the bytes contradict are
overruled: a UTF-8 label on invalid UTF-8 passes to the next witness, and a legacy label on
valid non-ASCII UTF-8 gives UTF-8 (mislabelled UTF-8 is common; legacy text that happens to be
valid UTF-8 is vanishingly rare). w3lib's ``html_to_unicode`` (Scrapy's) decodes the pages of
tests/fixtures/articles and html_encoding alike (same F1), but believes a label the bytes
contradict ("CafÃ©" for UTF-8 labelled ISO-8859-1) and looks for ``<meta charset>`` in the
first 4 KiB only: these rules stay ours.

Text: trafilatura with ``include_comments=False, favor_precision=True``, first with
``fast=True`` (no comparison with its fallback extractors); a text under ``_FULL_BELOW_WORDS``
words is extracted again without ``fast`` (the fallbacks rescue pages the main pass reads
badly, and short texts are where it happens); when that still yields fewer than
``_RETRY_BELOW_WORDS`` words it runs once more without favor_precision, and that text is kept
if it is at least twice as long (favor_precision occasionally drops a whole article body).
Measured with ``bench/extract_quality.py`` on the 183 full-text pages of the evaluation folder
(181 Zyte AEB + 2 Readability pages; token F1 as in the AEB's evaluate.py), and on its 27
French/Arabic snippet pages (all snippets right), one core:

    bare trafilatura.extract(html)               F1 0.958  48-50 pages/s  snippets 17/27
    include_comments=False                       F1 0.965  46 pages/s     snippets 18/27
      + fast=True                                F1 0.967  58 pages/s     snippets 18/27
      + fast=True, favor_recall=True             F1 0.968  76 pages/s     snippets 17/27
      + favor_precision=True                     F1 0.970  42 pages/s     snippets 19/27
      + favor_precision=True, retry              F1 0.974  43-45 pages/s  snippets 19/27
      fast first, full pass under 100 words,
        then the retry (this code)               F1 0.976  1.15x bare     snippets 19/27
    deduplicate=True / include_tables=False      F1 0.949 / 0.956 (worse than bare)

``Article.text`` holds one block (paragraph, heading, list item, table row) per line, joined by
a single ``"\\n"``, as trafilatura's txt output gives it.

The page's canonical URL is its ``<link rel="canonical">``, else its ``og:url``, kept only when
`identity.page_canonical_url` trusts it (same registrable site, not the home page, http(s)).

Title, date and language come from a cheap look at the tree already parsed for the text
(og:title / <title>; article:published_time / JSON-LD / itemprop datePublished, else htmldate
without its extensive search; <html lang>): about 0.8 ms a page, 4% of the time, most of it the
date, which a caller that has one already (a feed entry's) does not ask for
(``find_published=False``). trafilatura's own metadata pass (with_metadata=True) cut
throughput from 51 to 30 pages/s on the same pages.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import htmldate
import trafilatura
from lxml.html import HtmlElement, fromstring
from trafilatura.external import jt_stoplist_init
from trafilatura.utils import DOCTYPE_TAG, HTML_PARSER, decode_file, load_html

from monitor.errors import NoText
from monitor.identity import page_canonical_url


@dataclass(frozen=True)
class Article:
    title: str | None
    text: str  # main text, one block per line, lines joined by "\n"
    published: datetime | None  # aware, UTC; None when not found or not looked for
    lang: str | None  # ISO 639-1, from the page's own markup
    # The page's own canonical URL (<link rel="canonical">, else og:url), when it can be trusted
    # (see identity.page_canonical_url); canonicalised.
    canonical_url: str | None = None


# The options picked by measurement (see the module docstring). Plain keyword arguments, built
# per call: a shared trafilatura Extractor passed as options= silently ignores url=.
_FAST = {"include_comments": False, "favor_precision": True, "fast": True}
_PRECISE = {"include_comments": False, "favor_precision": True}
_BALANCED = {"include_comments": False}

# Shortest real article body in the evaluation gold is 18 words; the junk trafilatura returns
# for pages without an article (menus, copyright lines, cookie notices) is 3-8 words.
MIN_WORDS = 10
# Below this many words a favor_precision result is suspect (it has been seen to return only a
# 24-word reprint notice for a 368-word article), so the balanced run gets a chance.
_RETRY_BELOW_WORDS = 50
# Below this many words the fast pass is checked by the full one (fallback extractors included):
# it rescued French pages whose fast text missed paragraphs, at a fifth of the pages' cost.
_FULL_BELOW_WORDS = 100

_WORD = re.compile(r"\w+")
_ANY_TAG = re.compile(r"<[A-Za-z!?/]")
_CONTROL_CHAR = re.compile(r"[\x00-\x08\x0e-\x1f]")
_NOT_HTML_TYPES = ("image/", "audio/", "video/", "font/", "application/pdf", "application/zip")

# --- decoding ---------------------------------------------------------------------------------

_PRESCAN_BYTES = 64 * 1024
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([-\w.:]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta\b[^>]*?charset\s*=\s*["']?\s*([-\w.:]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([-\w.:]+)""", re.I)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
# Python codec name -> the codec browsers actually use for that label (WHATWG Encoding).
_BROWSER_CODEC = {
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "tis-620": "cp874",
    "iso8859-11": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
}


def decode_html(body: bytes | str, content_type: str | None = None) -> str:
    """The page as text; see the module docstring for the order of evidence."""
    return _decode(body, content_type)[0]


def _decode(body: bytes | str, content_type: str | None) -> tuple[str, bytes | None]:
    """`decode_html`'s text, and `body` when it is that text's UTF-8 encoding (else None)."""
    if isinstance(body, str):
        return body, None
    for bom, codec in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(codec, errors="replace"), None
    as_utf8 = _as_utf8(body)
    for declared in (http_codec(content_type), _codec_from_markup(body)):
        if declared is None or (declared == "utf-8" and as_utf8 is None):
            continue  # no label, or a UTF-8 label the bytes disprove: ask the next witness
        if as_utf8 is not None and (declared == "utf-8" or (
                not body.isascii() and not declared.startswith("utf-"))):
            return as_utf8, body  # UTF-8 as labelled, or a legacy label on UTF-8 bytes
        return body.decode(declared, errors="replace"), None
    return (as_utf8, body) if as_utf8 is not None else (decode_file(body), None)


def http_codec(content_type: str | None) -> str | None:
    """The codec a ``Content-Type`` header's charset names (as browsers read it), if any."""
    match = _HTTP_CHARSET.search(content_type or "")
    return _codec(match.group(1)) if match else None


def declared_codec(body: bytes, content_type: str | None) -> str | None:
    """The codec a document is declared in: by its HTTP charset, else by its markup (an XML
    declaration, a ``<meta charset>``); None when nothing says."""
    return http_codec(content_type) or _codec_from_markup(body)


def _codec_from_markup(body: bytes) -> str | None:
    head = body[:_PRESCAN_BYTES]
    match = _XML_ENCODING.match(head) or _META_CHARSET.search(_COMMENT.sub(b"", head))
    if match is None:
        return None
    codec = _codec(match.group(1).decode("ascii"))
    # Markup read as ASCII cannot truly declare UTF-16/32 (WHATWG: treat it as UTF-8).
    if codec is not None and codec.startswith(("utf-16", "utf-32")):
        return "utf-8"
    return codec


def _codec(label: str) -> str | None:
    try:
        name = codecs.lookup(label.strip().lower()).name
    except LookupError:
        return None
    return _BROWSER_CODEC.get(name, name)


def _as_utf8(body: bytes) -> str | None:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return None


# --- extraction -------------------------------------------------------------------------------


def extract_article(
    html: bytes | str, *, url: str | None = None, content_type: str | None = None,
    find_published: bool = True,
) -> Article:
    """The article in a fetched page. Raises NoText naming the URL when there is none.
    `find_published` False: the page's date is not looked for (``published`` is None)."""
    where = url or "page without URL"
    mime = (content_type or "").split(";")[0].strip().lower()
    if mime.startswith(_NOT_HTML_TYPES):
        raise NoText(f"{where}: content type {mime} is not HTML")
    page, utf8 = _decode(html, content_type)
    if not page.strip():
        raise NoText(f"{where}: empty page")
    if _looks_binary(page[:4096]) or page.lstrip().startswith("%PDF") or not _ANY_TAG.search(page):
        raise NoText(f"{where}: not HTML")
    tree = _parse(page, utf8)
    if tree is None:
        raise NoText(f"{where}: not parseable as HTML")

    text = _main_text(tree, url)
    words = len(_WORD.findall(text))
    if words < MIN_WORDS:
        found = f"only {words} words of main text" if words else "no main text"
        raise NoText(f"{where}: {found}; not an article page, or its text is built by scripts")
    return Article(
        title=_title(tree),
        text=text,
        published=_published(tree, url) if find_published else None,
        lang=_lang(tree),
        canonical_url=_canonical(tree, url),
    )


def warm_up() -> None:
    """Build now what trafilatura builds on its first page that falls back to justext without a
    language: the stop words of every justext language (about 0.13 s of CPU and 14 MB, in each
    process otherwise). A process forked afterwards has them already."""
    jt_stoplist_init()


# What trafilatura's load_html deletes from a text before parsing it (its INVALID_XML_CHARS):
# control characters other than tab, line feed and carriage return, and U+FFFE / U+FFFF.
_DELETED_CONTROLS = bytes(set(range(32)) - {9, 10, 13})
_NONCHARACTERS = ("\ufffe".encode(), "\uffff".encode())
_NONCHARACTER_START = b"\xef\xbf"  # theirs in UTF-8, and that of U+FFF0..U+FFFD: rare


def _parse(page: str, utf8: bytes | None) -> HtmlElement | None:
    """The page's tree, as trafilatura's ``load_html(page)`` makes it. From `utf8` (the page's
    UTF-8 bytes, when the page was read from them) when load_html would change nothing in the
    text (no character to delete, no doctype or ``<html/>`` to repair): the same tree (compared
    on every test page, tests/test_extract.py), without load_html's scans and copies of the
    text (a fifth of its time: 0.32 -> 0.25 s for the 210 pages of the evaluation folder)."""
    beginning = page[:50].lower()
    if utf8 is None or not _parsed_as_is(page, utf8, beginning):
        return load_html(page)
    try:
        tree = fromstring(utf8, parser=HTML_PARSER)
    except Exception:  # noqa: BLE001  (load_html logs it and tries its own ways)
        return load_html(page)
    if len(tree) < 1:
        return load_html(page)
    # load_html's check: a text without "html" near its start must parse to several blocks.
    return None if "html" not in beginning and len(tree) < 2 else tree


def _parsed_as_is(page: str, utf8: bytes, beginning: str) -> bool:
    """Whether load_html would parse `page` unchanged (see `_parse`)."""
    if len(utf8.translate(None, _DELETED_CONTROLS)) != len(utf8):
        return False
    if _NONCHARACTER_START in utf8 and any(nonchar in utf8 for nonchar in _NONCHARACTERS):
        return False
    if "doctype" in beginning:  # load_html drops a doctype with a "/" from the first line...
        end = page.find("\n")
        if end < 0 or DOCTYPE_TAG.search(page, 0, end):  # ...and ends a one-line page with "\n"
            return False
    # ... and repairs a self-closing <html/> in the first four lines
    return not any("<html" in line and line.endswith("/>")
                   for line in page[:4096].splitlines()[:4])


def _looks_binary(head: str) -> bool:
    # Images, archives and the like are ~10% control characters; a page may carry a stray one.
    return len(_CONTROL_CHAR.findall(head)) > len(head) // 20


def _main_text(tree: HtmlElement, url: str | None) -> str:
    # trafilatura copies the tree before pruning it, so the second run sees the same page.
    text = trafilatura.extract(tree, url=url, **_FAST) or ""
    words = len(_WORD.findall(text))
    if words < _FULL_BELOW_WORDS:
        text = trafilatura.extract(tree, url=url, **_PRECISE) or text
        words = len(_WORD.findall(text))
    if words < _RETRY_BELOW_WORDS:
        balanced = trafilatura.extract(tree, url=url, **_BALANCED) or ""
        # Only a much longer text means a body was dropped; a little longer is boilerplate.
        if len(_WORD.findall(balanced)) >= 2 * words:
            text = balanced
    return text.strip()


# --- metadata ---------------------------------------------------------------------------------

_SPACES = re.compile(r"\s+")
_TITLE_XPATHS = (
    '//meta[@property="og:title"]/@content',
    '//meta[@name="twitter:title"]/@content',
    "//title/text()",
)
_PUBLISHED_XPATHS = (
    '//meta[@property="article:published_time"]/@content',
    '//meta[@itemprop="datePublished"]/@content',
    '//*[@itemprop="datePublished"]/@datetime',
    '//meta[@name="parsely-pub-date" or @name="sailthru.date" or @name="pubdate"'
    ' or @name="publishdate" or @name="DC.date.issued" or @name="dcterms.created"]/@content',
)
_JSON_LD_PUBLISHED = re.compile(r'"datePublished"\s*:\s*"([^"]+)"')
_LANG_XPATHS = (
    "/html/@lang",
    "/html/@xml:lang",
    '//meta[@http-equiv="content-language" or @http-equiv="Content-Language"]/@content',
    '//meta[@property="og:locale"]/@content',
)
_ISO_639_1 = re.compile(r"[a-z]{2}")
_EARLIEST_YEAR = 1995


def _first(tree: HtmlElement, xpaths: tuple[str, ...]) -> str | None:
    for xpath in xpaths:
        for value in tree.xpath(xpath):
            value = _SPACES.sub(" ", str(value)).strip()
            if value:
                return value
    return None


def _title(tree: HtmlElement) -> str | None:
    return _first(tree, _TITLE_XPATHS)


def _published(tree: HtmlElement, url: str | None) -> datetime | None:
    value = _first(tree, _PUBLISHED_XPATHS[:1])
    if value is None:
        # JSON-LD is where many news sites (NYT, BBC, Reuters) put the date and nowhere else.
        for script in tree.xpath('//script[@type="application/ld+json"]/text()'):
            match = _JSON_LD_PUBLISHED.search(script)
            if match:
                value = match.group(1)
                break
    if value is None:
        value = _first(tree, _PUBLISHED_XPATHS[1:])
    moment = _parse_datetime(value) if value else None
    if moment is not None:
        return moment
    # htmldate knows many more markups but gives a day only, read as midnight UTC. Without its
    # extensive text search it is cheap. It rejects dates after today.
    day = htmldate.find_date(tree, extensive_search=False, original_date=True, url=url)
    return _parse_datetime(day) if day else None


def _parse_datetime(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)  # RFC 2822, as some sites write it
        except (TypeError, ValueError, IndexError):
            return None
    # CMS placeholders such as 0001-01-01 are not dates (htmldate uses the same floor).
    if moment.year < _EARLIEST_YEAR:
        return None
    if moment.tzinfo is None:
        # A page that gives no offset is read as UTC: off by hours at worst, never by days.
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


_CANONICAL_XPATHS = (
    # rel is a list of tokens, compared without case
    '//link[contains(concat(" ", translate(normalize-space(@rel), "CANOICL", "canoicl"), " "),'
    ' " canonical ")]/@href',
    '//meta[@property="og:url"]/@content',
)


def _canonical(tree: HtmlElement, url: str | None) -> str | None:
    for xpath in _CANONICAL_XPATHS:
        for value in tree.xpath(xpath):
            found = page_canonical_url(str(value), url)
            if found is not None:
                return found
    return None


def _lang(tree: HtmlElement) -> str | None:
    value = _first(tree, _LANG_XPATHS)
    if value is None:
        return None
    primary = re.split(r"[-_,;\s]", value.lower(), maxsplit=1)[0]
    return primary if _ISO_639_1.fullmatch(primary) else None
