"""Text search, the pure half: what a person typed -> a `Query`; a stored text -> a snippet.

In: a query such as ``cybersécurité maroc``, ``"protection des données" OR cndp -sport``, and
for snippets a stored text. Out: a `Query` (clauses that must all match, each a choice of
phrases, and phrases that must not match), which `store/search.py` turns into FTS5 or tsquery
syntax, and snippets with the matched words marked «like this». The semantics are those of web
search boxes (PostgreSQL's websearch_to_tsquery): words must all appear, "quotes" keep a phrase,
OR offers a choice, a leading minus excludes. Case and accents do not matter (é = e = E).
Raises `ValueError` for a query with nothing to look for. Pure.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

Phrase = tuple[str, ...]  # words, in order

MAX_PHRASES = 32
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Query:
    clauses: tuple[tuple[Phrase, ...], ...]  # every clause must match: one of its phrases
    excluded: tuple[Phrase, ...] = ()  # none of these may match

    def words(self) -> set[str]:
        """The folded words looked for (those to mark in a snippet)."""
        return {fold(word) for clause in self.clauses for phrase in clause for word in phrase}


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


def snippet(text: str, words: set[str], *, size: int = 32, mark: tuple[str, str] = ("«", "»"),
            ) -> str:
    """About `size` words of `text` around the most query words, those words marked."""
    tokens = [m.span() for m in _WORD.finditer(text)]
    if not tokens:
        return ""
    hits = set(spans(text, words))
    positions = [i for i, token in enumerate(tokens) if token in hits]
    first = 0
    if positions:
        def variety(start: int) -> int:
            return len({fold(text[slice(*tokens[i])]) for i in positions
                        if start <= i < start + size})

        best = max(positions, key=lambda i: (variety(max(i - 4, 0)), -i))
        first = max(best - 4, 0)
    last = min(first + size, len(tokens)) - 1
    out, cursor, open_mark = [], tokens[first][0], None
    for start, end in tokens[first:last + 1]:
        if (start, end) not in hits:
            continue
        if open_mark is not None and not text[open_mark[1]:start].strip():
            open_mark = (open_mark[0], end)  # the next word of a marked run: one mark for both
            continue
        if open_mark is not None:
            out.append(mark[0] + text[slice(*open_mark)] + mark[1])
            cursor = open_mark[1]
        out.append(text[cursor:start])
        open_mark = (start, end)
    if open_mark is not None:
        out.append(mark[0] + text[slice(*open_mark)] + mark[1])
        cursor = open_mark[1]
    out.append(text[cursor:tokens[last][1]])
    body = " ".join("".join(out).split())
    return ("…" if first else "") + body + ("…" if last < len(tokens) - 1 else "")
