"""Undo a body's gzip or deflate encoding a bounded piece at a time. Pure.

In: a response's Content-Encoding value and a `where` naming the URL for messages, then the raw
body chunk by chunk as it arrives (`BodyDecoder.feed`, then `finish`). Out: decoded pieces, none
over PIECE bytes and produced lazily, so the caller can count them and stop before a
compression bomb is ever whole in memory. Raises FetchError for a corrupt body or an encoding
monitor never asks for (br, zstd, compress). Other labels ("utf-8", "none" ...) pass the bytes
through unchanged.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from monitor.errors import FetchError

PIECE = 64 * 1024  # most decoded bytes produced at once
_GZIP_MAGIC = b"\x1f\x8b"
_INFLATED = ("gzip", "x-gzip", "deflate")
_NOT_ASKED_FOR = ("br", "zstd", "compress", "x-compress")


def content_codings(content_encoding: str) -> list[str]:
    """The codings of a Content-Encoding value, lower-case, in the order applied."""
    labels = (label.strip().lower() for label in content_encoding.split(","))
    return [label for label in labels if label and label != "identity"]


class BodyDecoder:
    """Undoes the codings of one body (the last one applied first), fed chunk by chunk."""

    def __init__(self, codings: list[str], where: str) -> None:
        for coding in codings:
            if coding in _NOT_ASKED_FOR:
                raise FetchError(
                    f"{where}: the body is {coding}-encoded, which monitor did not ask for; "
                    "the site ignores Accept-Encoding, report it or fetch the URL elsewhere"
                )
        # Labels like "utf-8" or "none" are misconfiguration, not compression: like browsers,
        # pass such bodies through unchanged.
        self._stages = [_Inflater(coding) for coding in reversed(codings) if coding in _INFLATED]
        self._where = where

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        """The decoded pieces `chunk` completes (possibly none)."""
        return self._guarded(self._through(0, chunk))

    def finish(self) -> Iterator[bytes]:
        """The last decoded pieces, once the whole body has been fed."""
        return self._guarded(self._flushed())

    def _through(self, stage: int, data: bytes) -> Iterator[bytes]:
        if stage == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[stage].feed(data):
            yield from self._through(stage + 1, piece)

    def _flushed(self) -> Iterator[bytes]:
        for stage, inflater in enumerate(self._stages):
            for piece in inflater.finish():
                yield from self._through(stage + 1, piece)

    def _guarded(self, pieces: Iterator[bytes]) -> Iterator[bytes]:
        try:
            yield from pieces
        except zlib.error as exc:
            codings = "+".join(stage.coding for stage in reversed(self._stages))
            raise FetchError(
                f"{self._where}: the {codings} body is corrupt ({exc}); it will be retried"
            ) from exc


class _Inflater:
    """One gzip or deflate coding; a gzip body may hold several members."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib: zlib._Decompress | None = None
        self._head = b""  # the first bytes, until there are enough to tell zlib from raw deflate

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._zlib is None:
            self._head += data
            if len(self._head) < 2:
                return
            data, self._head = self._head, b""
            self._zlib = _new_zlib(self.coding, data)
        yield from _bounded(self._zlib, data)
        while self._zlib.eof and self._zlib.unused_data.startswith(_GZIP_MAGIC):
            # Each further gzip member gets a fresh inflater. Other bytes after the end
            # (padding) are ignored, as browsers do.
            rest = self._zlib.unused_data
            self._zlib = _new_zlib(self.coding, rest)
            yield from _bounded(self._zlib, rest)

    def finish(self) -> Iterator[bytes]:
        if self._zlib is None and self._head:
            self._zlib = _new_zlib(self.coding, self._head)
            yield from _bounded(self._zlib, self._head)
        if self._zlib is not None and (tail := self._zlib.flush()):
            yield tail


def _new_zlib(coding: str, head: bytes) -> zlib._Decompress:
    if coding != "deflate":
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
