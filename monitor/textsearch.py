"""Text search, the pure half: what a person typed -> a `Query`; a stored text -> an excerpt.

In: a query such as ``cybersécurité maroc``, ``"protection des données" OR cndp NOT sport``,
``cyber*``, and for excerpts a stored text. Out: a `Query` (clauses that must all match, each a
choice of phrases, and phrases that must not match), which `store/search.py` turns into FTS5 or
tsquery syntax; and the one excerpt of a hit (about `EXCERPT_CHARS` characters around its first
match) with the spans of the matched words (the inspector highlights them), or as a one-line
`snippet` with them marked (the command line). Raises `ValueError` for a query with nothing to
look for. Pure.

The syntax (`SYNTAX`, which `monitor items search --help` prints) is that of web search boxes:
words must all appear (``AND`` between them may be written, it changes nothing), "quotes" keep
a phrase, ``OR`` offers a choice, ``NOT`` or a leading minus excludes, and a trailing ``*``
makes a word a prefix (``cyber*`` finds cyberattaque and cybersécurité). Case and accents do
not matter (é = e = E). A prefix word keeps its ``*`` in the `Query` (``("cyber*",)``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

Phrase = tuple[str, ...]  # words, in order; the last one may be a prefix, "cyber*"

SYNTAX = """\b
  maroc cybersécurité     both words (AND between them changes nothing)
  "loi 09-08"             the words side by side, in this order
  dgssi OR cndp           either word
  maroc NOT sport         maroc, not sport (also: maroc -sport)
  cyber*                  a word starting with cyber
Case and accents do not matter: cybersecurite finds cybersécurité."""

MAX_PHRASES = 32
EXCERPT_CHARS = 280  # the excerpt of a text shown in a listing or a search hit
_TOKEN = re.compile(r'(-?)"([^"]*)("?\*?)|(\S+)')
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Query:
    clauses: tuple[tuple[Phrase, ...], ...]  # every clause must match: one of its phrases
    excluded: tuple[Phrase, ...] = ()  # none of these may match

    def words(self) -> set[str]:
        """The folded words looked for (those to mark in a snippet); prefixes end with "*"."""
        return {fold(word) for clause in self.clauses for phrase in clause for word in phrase}

    def typed(self) -> set[str]:
        """The words looked for as typed, lower-cased, without a prefix's "*" (found faster
        than folded ones)."""
        return {word.lower().rstrip("*") for clause in self.clauses for phrase in clause
                for word in phrase}


def is_prefix(word: str) -> bool:
    return word.endswith("*")


def parse_query(text: str) -> Query:
    clauses: list[tuple[Phrase, ...]] = []
    excluded: list[Phrase] = []
    want_or = False
    want_not = False
    for match in _TOKEN.finditer(text):
        negative, quoted, bare = match.group(1) == "-", match.group(2), match.group(4)
        starred = (match.group(3) or "").endswith("*")
        if bare is not None:
            if bare == "OR" or bare == "or":
                want_or = bool(clauses)
                continue
            if bare in ("AND", "NOT"):
                want_not = bare == "NOT"
                continue
            negative = bare.startswith("-") and len(bare) > 1
            quoted = bare[1:] if negative else bare
        phrase = tuple(_WORD.findall(quoted))
        if not phrase:
            continue
        if starred or quoted.rstrip().endswith("*"):
            phrase = phrase[:-1] + (phrase[-1] + "*",)
        negative, want_not = negative or want_not, False
        if negative:
            excluded.append(phrase)
        elif want_or:
            clauses[-1] = clauses[-1] + (phrase,)
        else:
            clauses.append((phrase,))
        want_or = False
        if len(clauses) + len(excluded) > MAX_PHRASES:
            raise ValueError(f"the query has more than {MAX_PHRASES} words or phrases; "
                             "keep the few that matter")
    if not clauses:
        raise ValueError(f"nothing to look for in {text!r}: give at least one word that the "
                         "items must contain (NOT or a leading - only excludes)")
    return Query(tuple(clauses), tuple(excluded))


def fts5_match(query: Query) -> str:
    """The query in SQLite FTS5 syntax (every phrase quoted: no operator can slip in)."""

    def quoted(phrase: Phrase) -> str:
        words = " ".join(word.rstrip("*") for word in phrase)
        return f'"{words}"' + (" *" if is_prefix(phrase[-1]) else "")

    expression = " AND ".join(
        "(" + " OR ".join(quoted(phrase) for phrase in clause) + ")" for clause in query.clauses
    )
    for phrase in query.excluded:
        expression = f"({expression}) NOT {quoted(phrase)}"
    return expression


class _FoldTable(dict):
    """str.translate table: a character -> its case- and accent-folded form (cached)."""

    def __missing__(self, code: int) -> str:
        decomposed = unicodedata.normalize("NFKD", chr(code))
        folded = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
        self[code] = folded
        return folded


_FOLD = _FoldTable()


def fold(text: str) -> str:
    return text.translate(_FOLD)


def spans(text: str, words: set[str]) -> list[tuple[int, int]]:
    """Offsets in `text` of the words whose folded form is in `words` (already folded), or
    starts with one of its prefixes (``cyber*``)."""
    prefixes = tuple(word[:-1] for word in words if is_prefix(word))

    def wanted(word: str) -> bool:
        return word in words or (bool(prefixes) and word.startswith(prefixes))

    folded = fold(text)
    if len(folded) == len(text):
        return [m.span() for m in _WORD.finditer(folded) if wanted(m.group())]
    # A character folded into several (ß -> ss, ligatures): map folded offsets back.
    origin: list[int] = []
    for index, char in enumerate(text):
        origin.extend([index] * len(fold(char)))
    folded = "".join(fold(char) for char in text)
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in _WORD.finditer(folded)
            if wanted(m.group())]


def excerpt(text: str, words: set[str], typed: set[str] = frozenset(),
            width: int = EXCERPT_CHARS) -> tuple[str, list[list[int]]]:
    """About `width` characters of the text around its first hit, and the [start, end] spans of
    the hits inside that excerpt (offsets in the excerpt, case and accents ignored). A cut end
    is shown by "…".

    `words` are the folded words, `typed` the words as typed (lower-cased): the first hit is
    looked for as typed (cheap), else folded, piece by piece from the start.
    """
    lowered = text.lower()
    found = [at for at in (lowered.find(word.rstrip("*")) for word in typed | words) if at >= 0]
    first = min(found) if found else _first_folded_hit(text, words)
    left = max(0, first - width // 3)
    if left:
        space = text.find(" ", left, first)
        left = space + 1 if space >= 0 else left
    right = min(len(text), left + width)
    prefix = "…" if left else ""
    shift = len(prefix)
    inside = [[start + shift, end + shift] for start, end in spans(text[left:right], words)]
    return prefix + text[left:right] + ("…" if right < len(text) else ""), inside


def _first_folded_hit(text: str, words: set[str], piece: int = 2000) -> int:
    for start in range(0, len(text), piece):
        end = text.find(" ", start + piece)  # end on a space: no word cut in two
        hits = spans(text[start:end if end >= 0 else len(text)], words)
        if hits:
            return start + hits[0][0]
    return 0


MARK = ("**", "**")  # a hit in plain text; never a quotation mark of French or Arabic text


def snippet(text: str, query: Query, *, width: int = EXCERPT_CHARS,
            mark: tuple[str, str] = MARK) -> str:
    """The `excerpt` of `text` for `query` on one line, its hits marked **like this** (words
    next to each other share one mark)."""
    cut, hits = excerpt(text, query.words(), query.typed(), width)
    return marked(cut, hits, mark)


def marked(cut: str, hits: list[list[int]], mark: tuple[str, str] = MARK) -> str:
    """An excerpt on one line with its hits (``[start, end]`` spans) marked."""
    out, cursor, run = [], 0, None
    for start, end in hits:
        if run is not None and not cut[run[1]:start].strip():
            run = (run[0], end)  # the next word of a marked run: one mark for both
            continue
        if run is not None:
            out += [cut[cursor:run[0]], mark[0], cut[run[0]:run[1]], mark[1]]
            cursor = run[1]
        run = (start, end)
    if run is not None:
        out += [cut[cursor:run[0]], mark[0], cut[run[0]:run[1]], mark[1]]
        cursor = run[1]
    out.append(cut[cursor:])
    return " ".join("".join(out).split())
