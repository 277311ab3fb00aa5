"""A UTF-8 feed with a few invalid bytes, read as UTF-8, where feedparser's own guess goes wrong.

In: the body bytes of a fetched feed and its ``Content-Type`` header. Out: the bytes of a
UTF-8 document with a few invalid sequences, repaired. Pure; what a document declares is read
as extraction reads it (`extract.declared_codec`).
"""

from __future__ import annotations

import codecs

from monitor.extract import declared_codec

_UTF16_32_BOMS = (b"\xfe\xff", b"\xff\xfe", b"\x00\x00\xfe\xff")


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
    declared = declared_codec(content.removeprefix(codecs.BOM_UTF8), content_type) or "utf-8"
    if declared != "utf-8":
        return content, 0
    text = content.decode("utf-8", "replace")
    invalid = text.count("\ufffd") - content.count("\ufffd".encode())
    non_ascii = len(text) - len(text.encode("ascii", "ignore")) - invalid
    if invalid >= non_ascii:
        return content, 0
    return text.encode("utf-8"), invalid

