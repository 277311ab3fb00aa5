"""Text folding shared by rule terms and texts. Pure.

In: a text. Out: `Token`s, each with its offsets in the ORIGINAL text (so matches can be shown
in context), its exact form (for case-sensitive acronyms) and its folded forms:
- NFKC; case folded; accents stripped (Latin);
- French elision split: ``l'IA``, ``d’intelligence``, ``qu'`` give separate tokens because the
  apostrophe (straight or typographic) is not part of a word;
- Arabic: diacritics and tatweel removed, alef forms to ا, alef maqsura to ي, taa marbuta to ه;
  the definite article ال and the proclitics و ف ب ل ك are offered as strippable prefixes, so
  ``والذكاء`` matches the term ``الذكاء``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

# Words: letters/digits (incl. Arabic), joined by nothing else; "09-08" gives two tokens.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)

_ARABIC_DIACRITICS = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه",
                                 "ؤ": "و", "ئ": "ي"})
_ARABIC_RANGE = re.compile("[\u0600-\u06ff]")
_PROCLITICS = ("و", "ف")
_PREPOSITIONS = ("ب", "ل", "ك")


@dataclass(frozen=True, slots=True)
class Token:
    start: int
    end: int
    exact: str
    forms: tuple[str, ...]  # folded form first, then Arabic forms with prefixes stripped


def fold_word(word: str) -> str:
    """The folded form of one word (no prefix stripping)."""
    return _fold(word)


@lru_cache(maxsize=200_000)
def _fold(word: str) -> str:
    if word.isascii():
        return word.lower()
    word = unicodedata.normalize("NFKC", word).casefold()
    if _ARABIC_RANGE.search(word):
        return _ARABIC_DIACRITICS.sub("", word).translate(_ARABIC_LETTERS)
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


@lru_cache(maxsize=200_000)
def word_forms(word: str) -> tuple[str, ...]:
    """The folded word, then for Arabic the forms without its proclitics and article."""
    folded = _fold(word)
    if not _ARABIC_RANGE.search(folded):
        return (folded,)
    forms = [folded]
    stem = folded
    if len(stem) > 3 and stem.startswith(_PROCLITICS):
        stem = stem[1:]
        forms.append(stem)
    if len(stem) > 3 and stem.startswith("لل"):
        # li- + al-: the article's alef is dropped in writing (للأمن = ل + الأمن)
        forms.append(stem[2:])
        forms.append("ال" + stem[2:])
    elif len(stem) > 3 and stem.startswith(_PREPOSITIONS):
        stem = stem[1:]
        forms.append(stem)
    if len(stem) > 4 and stem.startswith("ال"):
        forms.append(stem[2:])
    return tuple(dict.fromkeys(forms))


def tokenize(text: str) -> list[Token]:
    """Tokens of `text` with offsets into `text` itself."""
    # Folding is per word, never on the whole text, so offsets stay those of the original.
    tokens = []
    for match in _WORD.finditer(text):
        word = match.group()
        exact = word if word.isascii() else unicodedata.normalize("NFKC", word)
        tokens.append(Token(match.start(), match.end(), exact, word_forms(word)))
    return tokens


def term_key(term: str) -> tuple[str, ...]:
    """Folded words of a rule term, Arabic article removed, as matched against token forms."""
    words = []
    for match in _WORD.finditer(term):
        folded = _fold(match.group())
        if _ARABIC_RANGE.search(folded) and len(folded) > 4 and folded.startswith("ال"):
            folded = folded[2:]
        words.append(folded)
    return tuple(words)
