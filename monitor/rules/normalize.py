"""Text folding shared by rule terms and texts. Pure.

In: a text. Out: a `Folded` text, one byte per character, that the matcher reads (its
``.lower()``; ASCII capitals are kept in `Folded.data` so that acronyms can be checked), with a
map back to offsets in the ORIGINAL text (so matches can be shown in context).

What folding does, identically for terms and texts (`fold_char` is the one definition):
- Unicode NFKC, then case folded; Latin accents stripped (``é`` -> ``e``); ``œ`` kept as a letter;
- every character that is not a letter or digit (spaces, punctuation, straight and typographic
  apostrophes and quotes, dashes, ``°``, Arabic comma ...) becomes a space, so French elision is
  split (``l'IA``, ``d’intelligence``, ``qu'``) and ``09-08`` reads as ``09 08``;
- Arabic: diacritics and tatweel removed, alef forms (أ إ آ ٱ) to ا, hamza seats (ؤ ئ) to و ي,
  alef maqsura ى to ي, taa marbuta ة to ه, Persian/Maghrebi letters (ک ی ھ ڭ ڤ گ) to their
  Arabic forms, Arabic-Indic digits to 0-9. The article ال and the proclitics و ف ب ل ك are not
  removed here: terms are expanded into their prefixed forms instead (see `compile`).

How it is fast (the text is never folded character by character in Python): the text is
encoded with the Windows-1256 code page (Arabic + French letters: one byte per character, in C),
unencodable characters (É, ñ, emoji, Arabic-Indic digits) being folded by an error handler, then
one `bytes.translate` maps every byte to its folded byte. Only characters that fold to nothing
(Arabic diacritics, tatweel, combining accents, zero-width marks) or to several letters (``ﬁ``,
``ß``) need more work: the first are deleted with an offset map, the second take a slow exact path.
"""

from __future__ import annotations

import bisect
import codecs
import re
import unicodedata
from functools import lru_cache
from itertools import accumulate, chain, compress, repeat

CODEPAGE = "cp1256"
SPACE, DELETE, SPECIAL, OTHER, BOUNDARY = b" ", b"\x01", b"\x02", b"\x03", b"\x04"
_ARABIC_MAP = str.maketrans({
    "ٱ": "ا", "ى": "ي", "ة": "ه", "ک": "ك", "ی": "ي", "ھ": "ه", "ۀ": "ه", "ڭ": "ك", "ڤ": "ف",
    "گ": "ك", "ـ": "", **{chr(0x0660 + d): str(d) for d in range(10)},
    **{chr(0x06F0 + d): str(d) for d in range(10)},
})
_IGNORABLE = {"\u00ad", "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u2060", "\ufeff"}
# Apostrophes that Unicode files as letters (modifier letters): separators, like ' and ’.
_APOSTROPHES = {"\u02bc", "\u02bb", "\u02bd", "\u02b9", "\u02c8", "\u02ca", "\u02cb"}
# The letters a folded text is made of (besides a-z and 0-9), each one byte in cp1256.
_ARABIC_ALPHABET = "ءابتثجحخدذرزسشصضطظعغفقكلمنهويپچژ"
ALPHABET = frozenset("abcdefghijklmnopqrstuvwxyz0123456789œ" + _ARABIC_ALPHABET)


@lru_cache(maxsize=4096)
def fold_char(char: str) -> str:
    """The folded form of one character: alphabet letters, spaces, or '' (ignorable)."""
    if char in _IGNORABLE:
        return ""
    if char in _APOSTROPHES:
        return " "
    text = unicodedata.normalize("NFKC", char).casefold()
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if not unicodedata.combining(c))
    text = text.translate(_ARABIC_MAP)
    out = []
    for c in text:
        if c in ALPHABET:
            out.append(c)
        elif c.isalnum():
            out.append("\x03")  # a letter of another script: part of a word, never matched
        else:
            out.append(" ")
    return "".join(out)


def _byte_of(char: str) -> bytes:
    """The one byte that stands for `char` (a fold of one character) in a folded text."""
    folded = fold_char(char)
    if folded == "":
        return DELETE
    if len(folded) == 1:
        return folded.encode(CODEPAGE)
    if not folded.strip():
        return SPACE
    return SPECIAL  # several letters (ﬁ -> fi): the exact slow path takes it


# The byte -> character map texts are encoded with: cp1256, except that the characters outside
# it that texts have most (French capitals with an accent, the zero-width space) take the bytes
# of three that they seldom have (dagger, double dagger, modifier circumflex), which in turn go
# through the error handler. Either way a character gets the same folded byte: fewer handler
# calls, same result.
_SWAPS = {0x86: "É", 0x87: "À", 0x88: "\u200b"}
_DECODING = "".join(_SWAPS.get(byte, chr_) for byte, chr_ in
                    enumerate(bytes(range(256)).decode(CODEPAGE)))


def _build_table() -> bytes:
    table = bytearray()
    for byte in range(256):
        if byte in (1, 2, 3, 4):
            table.append(byte)  # our markers (a control character in a text is noise anyway)
        elif 65 <= byte <= 90:
            table.append(byte)  # A-Z kept: acronyms are checked on it; matching reads .lower()
        else:
            table += _byte_of(_DECODING[byte])
    return bytes(table)


_TABLE = _build_table()
_REPLACEMENT: dict[str, str] = {}


def _replace_unencodable(error: UnicodeEncodeError) -> tuple[str, int]:
    """Codec error handler: characters outside cp1256, one encodable character each."""
    chars = error.object[error.start:error.end]
    rep = _REPLACEMENT.get(chars)  # mostly one character (É, À, zero-width space)
    if rep is not None:
        return rep, error.end
    out = []
    for char in chars:
        rep = _REPLACEMENT.get(char)
        if rep is None:
            rep = _byte_of(char).decode(CODEPAGE)
            if len(_REPLACEMENT) < 100_000:
                _REPLACEMENT[char] = rep
        out.append(rep)
    rep = "".join(out)
    if len(chars) <= 4 and len(_REPLACEMENT) < 100_000:
        _REPLACEMENT[chars] = rep
    return rep, error.end


codecs.register_error("monitor-fold", _replace_unencodable)
# as text.encode(CODEPAGE, "monitor-fold") with `_DECODING`, without a codec's Python layer
_ENCODING = codecs.charmap_build(_DECODING)
_charmap_encode = codecs.charmap_encode


class Folded:
    """A folded text: `data` has a space before and after, and one byte per character of the
    original, except where characters were deleted (Arabic diacritics...) or expanded (ﬁ)."""

    __slots__ = ("data", "length", "_gaps", "_shift", "_exact")

    def __init__(self, data: bytes, length: int, gaps: tuple[int, ...] = (),
                 shift: tuple[int, ...] = (), exact: tuple[int, ...] | None = None) -> None:
        self.data = data
        self.length = length  # of the original text
        self._gaps = gaps  # folded positions before which characters were deleted...
        self._shift = shift  # ...and how many characters in all up to there
        self._exact = exact  # slow path: the original offset of each folded byte

    @property
    def simple(self) -> bool:
        """True when folded position p is original offset p - 1 (nothing was deleted)."""
        return not self._gaps and self._exact is None

    def start(self, pos: int) -> int:
        """Offset in the original text of the character at folded position `pos`."""
        if self._exact is not None:
            return self._exact[pos] if pos < len(self._exact) else self.length
        index = bisect.bisect_right(self._gaps, pos)
        return min(self.length, max(0, pos - 1 + (self._shift[index - 1] if index else 0)))

    def end(self, pos: int) -> int:
        """Offset in the original text just after the folded character before `pos`."""
        if self._exact is not None:  # up to the next character kept (deleted marks included)
            return self._exact[pos] if pos < len(self._exact) else self.length
        return self.start(pos)


def fold_text(text: str, *, padded: bool = False) -> Folded:
    """Fold a text for matching (see the module docstring). `padded`: the text already starts
    and ends with a space (saves a copy); offsets then count that first space."""
    data = (text.encode("ascii") if text.isascii()  # the same bytes, copied
            else _charmap_encode(text, "monitor-fold", _ENCODING)[0]).translate(_TABLE)
    if padded:
        if SPECIAL not in data and DELETE not in data:
            return Folded(data, len(text), (0,), (1,))  # folded position p is offset p
        # the rare slow cases: fold inside (one byte per character: the inside is already
        # folded, data[1:-1]), shift by one
        inner = (_fold_exact(text[1:-1]) if SPECIAL in data
                 else _fold_deleted(data[1:-1], len(text) - 2))
        if inner._exact is not None:
            return Folded(inner.data, len(text), exact=tuple(x + 1 for x in inner._exact))
        return Folded(inner.data, len(text), (0, *inner._gaps),
                      (1, *(x + 1 for x in inner._shift)))
    if SPECIAL in data:
        return _fold_exact(text)
    if DELETE not in data:
        return Folded(b" " + data + b" ", len(text))
    return _fold_deleted(data, len(text))


def _fold_deleted(data: bytes, length: int) -> Folded:
    """`fold_text` of a text of `length` characters folded to `data` (not padded), with
    characters to delete (DELETE bytes) and none to expand."""
    # Without a Python step per run of deleted characters (Arabic diacritics: many runs):
    # pieces[i] is what is kept between the i-th and the (i+1)-th deleted character; a run
    # ends after the e-th deleted character when pieces[e] is not empty (or e is the last).
    # Then e characters in all were removed up to there, and cum[e] is the folded position
    # after the run (+1: the leading space).
    pieces = data.split(DELETE)
    lengths = list(map(len, pieces))
    ends = list(compress(range(1, len(pieces)), lengths[1:]))
    if not lengths[-1]:
        ends.append(len(pieces) - 1)
    cum = list(accumulate(lengths, initial=1))
    return Folded(b" " + b"".join(pieces) + b" ", length, tuple(map(cum.__getitem__, ends)),
                  tuple(ends))


def _fold_exact(text: str) -> Folded:
    """Character by character, for the texts with multi-letter folds (ligatures, ß, and every
    Hangul syllable, which decomposes into its letters): each character's bytes, and the
    character's offset once per byte. No Python step per character: a Korean article of 50,000
    characters took 25 ms that way."""
    pieces = list(map(_exact_bytes, text))
    origin = chain.from_iterable(map(repeat, range(len(text)), map(len, pieces)))
    return Folded(b" " + b"".join(pieces) + b" ", len(text),
                  exact=(0, *origin, len(text)))


@lru_cache(maxsize=100_000)
def _exact_bytes(char: str) -> bytes:
    """What `_fold_exact` makes of one character (A-Z and the boundary byte kept as they are)."""
    return (char if "A" <= char <= "Z" or char == "\x04" else fold_char(char)).encode(CODEPAGE)


def fold(text: str) -> str:
    """The folded text as readable characters, spaces collapsed (for terms, tests, display)."""
    data = fold_text(text).data.lower().replace(OTHER, b"_")
    return " ".join(data.decode(CODEPAGE).split())


def words(text: str) -> list[tuple[int, int, str]]:
    """The words of `text`: (start, end, folded word), offsets into `text` itself."""
    folded = fold_text(text)
    out = []
    for match in re.finditer(rb"[^ ]+", folded.data):
        word = match.group().lower().replace(OTHER, b"_").decode(CODEPAGE)
        out.append((folded.start(match.start()), folded.end(match.end()), word))
    return out
