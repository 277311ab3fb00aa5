"""Text search, the pure half: what a person typed -> a `Query`; a stored text -> an excerpt.

In: a query such as ``cybersécurité maroc``, ``"protection des données" OR cndp -sport``, and
for excerpts a stored text. Out: a `Query` (clauses that must all match, each a choice of
phrases, and phrases that must not match), which `store/search.py` turns into FTS5 or tsquery
syntax; and the one excerpt of a hit (about `EXCERPT_CHARS` characters around its first match)
with the spans of the matched words (the inspector highlights them), or as a one-line
`snippet` with them marked «like this» (the command line). The semantics are those of web
search boxes (PostgreSQL's websearch_to_tsquery): words must all appear, "quotes" keep a
phrase, OR offers a choice, a leading minus excludes. Case and accents do not matter
(é = e = E). Raises `ValueError` for a query with nothing to look for. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

Phrase = tuple[str, ...]  # words, in order

MAX_PHRASES = 32
EXCERPT_CHARS = 280  # the excerpt of a text shown in a listing or a search hit
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Query:
    clauses: tuple[tuple[Phrase, ...], ...]  # every clause must match: one of its phrases
    excluded: tuple[Phrase, ...] = ()  # none of these may match

    def words(self) -> set[str]:
        """The folded words looked for (those to mark in a snippet)."""
        return {fold(word) for clause in self.clauses for phrase in clause for word in phrase}

    def typed(self) -> set[str]:
        """The words looked for as typed, lower-cased (found faster than folded ones)."""
        return {word.lower() for clause in self.clauses for phrase in clause for word in phrase}


def parse_query(text: str) -> Query:
    clauses: list[tuple[Phrase, ...]] = []
    excluded: list[Phrase] = []
    want_or = False
    for match in _TOKEN.finditer(text):
        negative, quoted, bare = match.group(1) == "-", match.group(2), match.group(3)
        if bare is not None:
            if bare == "OR" or bare == "or":
                want_or = bool(clauses)
                continue
            negative = bare.startswith("-") and len(bare) > 1
            quoted = bare[1:] if negative else bare
        phrase = tuple(_WORD.findall(quoted))
        if not phrase:
            continue
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
                         "items must contain (a leading - only excludes)")
    return Query(tuple(clauses), tuple(excluded))


def fts5_match(query: Query) -> str:
    """The query in SQLite FTS5 syntax (every phrase quoted: no operator can slip in)."""

    def quoted(phrase: Phrase) -> str:
        return '"' + " ".join(phrase) + '"'

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
    """Offsets in `text` of the words whose folded form is in `words` (already folded)."""
    folded = fold(text)
    if len(folded) == len(text):
        return [m.span() for m in _WORD.finditer(folded) if m.group() in words]
    # A character folded into several (ß -> ss, ligatures): map folded offsets back.
    origin: list[int] = []
    for index, char in enumerate(text):
        origin.extend([index] * len(fold(char)))
    folded = "".join(fold(char) for char in text)
    return [(origin[m.start()], origin[m.end() - 1] + 1) for m in _WORD.finditer(folded)
            if m.group() in words]


def excerpt(text: str, words: set[str], typed: set[str] = frozenset(),
            width: int = EXCERPT_CHARS) -> tuple[str, list[list[int]]]:
    """About `width` characters of the text around its first hit, and the [start, end] spans of
    the hits inside that excerpt (offsets in the excerpt, case and accents ignored). A cut end
    is shown by "…".

    `words` are the folded words, `typed` the words as typed (lower-cased): the first hit is
    looked for as typed (cheap), else folded, piece by piece from the start.
    """
    lowered = text.lower()
    found = [at for at in (lowered.find(word) for word in typed | words) if at >= 0]
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


def snippet(text: str, query: Query, *, width: int = EXCERPT_CHARS,
            mark: tuple[str, str] = ("«", "»")) -> str:
    """The `excerpt` of `text` for `query` on one line, its hits marked «like this» (words
    next to each other share one mark)."""
    cut, hits = excerpt(text, query.words(), query.typed(), width)
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
