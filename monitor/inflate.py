"""Undo a body's gzip or deflate encoding a bounded piece at a time. Pure.

In: the body's raw chunks as they arrive (any iterable of bytes), one Content-Encoding label
and a `where` naming the URL for messages. Out: an iterator of decoded pieces, none over PIECE
bytes, so the caller can count and stop before a compression bomb is ever whole in memory;
raises FetchError for a corrupt body or an encoding monitor never asks for (br, zstd, compress).
Other labels ("utf-8", "none" ...) pass the chunks through unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

from monitor.errors import FetchError

PIECE = 64 * 1024  # most decoded bytes produced at once
_GZIP_MAGIC = b"\x1f\x8b"


def inflate(chunks: Iterable[bytes], encoding: str, where: str) -> Iterator[bytes]:
    """Undo gzip or deflate, yielding at most PIECE bytes at a time."""
    if encoding in ("br", "zstd", "compress", "x-compress"):
        raise FetchError(
            f"{where}: the body is {encoding}-encoded, which monitor did not ask for; "
            "the site ignores Accept-Encoding, report it or fetch the URL elsewhere"
        )
    if encoding not in ("gzip", "x-gzip", "deflate"):
        # Labels like "utf-8" or "none" are misconfiguration, not compression; like httpx,
        # pass such bodies through unchanged.
        yield from chunks
        return
    inflater = None
    head = b""  # the first bytes, until there are enough to tell zlib from raw deflate
    try:
        for chunk in chunks:
            if inflater is None:
                head += chunk
                if len(head) < 2:
                    continue
                inflater, chunk = _new_inflater(encoding, head), head
            yield from _bounded(inflater, chunk)
            while inflater.eof and inflater.unused_data.startswith(_GZIP_MAGIC):
                # A gzip body may hold several members; each gets a fresh inflater. Other
                # bytes after the end (padding) are ignored, as browsers do.
                rest = inflater.unused_data
                inflater = _new_inflater(encoding, rest)
                yield from _bounded(inflater, rest)
        if inflater is None and head:
            inflater = _new_inflater(encoding, head)
            yield from _bounded(inflater, head)
        if inflater is not None and (tail := inflater.flush()):
            yield tail
    except zlib.error as exc:
        raise FetchError(
            f"{where}: the {encoding} body is corrupt ({exc}); it will be retried"
        ) from exc


def _new_inflater(encoding: str, head: bytes) -> zlib._Decompress:
    if encoding != "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    # "deflate" should be zlib-wrapped (RFC 9110) but some servers send raw deflate; a zlib
    # header has compression method 8 and a check making the first two bytes a multiple of 31.
    wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
    return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)


def _bounded(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
    """All output of `data`, at most PIECE bytes at a time (zlib holds the rest back)."""
    while True:
        piece = inflater.decompress(data, PIECE)
        if piece:
            yield piece
        data = inflater.unconsumed_tail
        if not data and len(piece) < PIECE:
            return
