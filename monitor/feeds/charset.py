"""Which encoding to read a feed's bytes in, where feedparser's own guess goes wrong.

In: the body bytes of a fetched feed and its ``Content-Type`` header. Out: the HTTP charset;
the bytes of a UTF-8 document with a few invalid sequences, repaired. Pure.
"""

from __future__ import annotations

import re

_XML_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([\w.:-]+)["']""")
_HTTP_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.I)
_UTF8_NAMES = frozenset({"utf-8", "utf8"})
_UTF16_32_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")


def http_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a ``Content-Type`` header, if any."""
    match = _HTTP_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def utf8_with_replacement(content: bytes, content_type: str | None) -> tuple[bytes, int]:
    """(bytes, number of invalid UTF-8 sequences replaced): a document declared UTF-8 (by the
    HTTP charset, else its XML declaration, else by default) that is mostly valid UTF-8 but has
    a few invalid bytes, re-encoded with U+FFFD in their place.

    feedparser would otherwise read the whole document in another encoding (Windows-1252,
    MacRoman ...), turning every correct "é" into "Ã©" for the sake of a few bad bytes. A
    document that is mostly invalid as UTF-8 (more invalid sequences than valid non-ASCII
    characters) is really in another encoding, mislabelled: it is left to feedparser."""
    if content.startswith(_UTF16_32_BOMS):
        return content, 0  # a UTF-16/32 byte order mark
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return content, 0
    declared = http_charset(content_type) or _xml_declared_encoding(content) or "utf-8"
    if declared.lower().replace("_", "-") not in _UTF8_NAMES:
        return content, 0
    text = content.decode("utf-8", "replace")
    invalid = text.count("\ufffd") - content.count("\ufffd".encode())
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - invalid
    if invalid >= non_ascii:
        return content, 0
    return text.encode("utf-8"), invalid


def _xml_declared_encoding(content: bytes) -> str | None:
    match = _XML_ENCODING.match(content.removeprefix(b"\xef\xbb\xbf"))
    return match.group(1).decode("ascii") if match else None
