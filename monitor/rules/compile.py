"""Terms -> one multi-pattern automaton over folded texts. Pure.

In: the `Term`s of a `RuleSpec`. Out: a `Matcher`: `find(data)` gives the raw hits of one folded
text, `counts(...)` turns hits into matches per group, `explain(...)` into `Match`-ready spans.
The automaton (Aho-Corasick, ahocorasick_rs, a contiguous NFA) reads the folded bytes once,
whatever the number of terms. Word boundaries cost nothing: in a folded text every non-word
character is a space, so a key is a term with a space on each side.

Each term is expanded into its keys instead of folding more of the text:
- Arabic: every combination of the proclitics و ف, the prepositions ب ل ك and the article ال in
  front of the first word (ل + ال written لل), 24 forms; a definite phrase (الأمن السيبراني)
  also matches indefinite (أمن سيبراني); later words otherwise as written;
- Latin phrases of up to 4 words: one or two separators between words (``loi n° 09-08``,
  ``l’ IA``); longer phrases: one;
- a prefix term (``marocain*``) has no closing space in its key; its match runs to the word end;
- an all-capitals acronym (``IA``, ``CNDP``) is found folded, then kept only where the text has
  it in capitals, and not as a verb after ``j'``/``n'``/``m'``/``t'``/``s'`` (``J'AI``).

Counting units: a key's terms that need no check form unit ``k``; its acronym terms form unit
``k + len(keys)``, present only where the capitals check passed. A match inside a longer match
of the same group (``numérique`` inside ``transition numérique``), or inside a match of a mask
group (``maroc`` inside ``Maroc Telecom``), is not counted: the containments are worked out
once, here, by running the automaton over the keys themselves.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from operator import itemgetter

import ahocorasick_rs

from monitor.rules.normalize import CODEPAGE
from monitor.rules.ruleset import ARABIC_ARTICLE, Term, strip_article

_PREFIXES = tuple(dict.fromkeys(
    conj + ("لل" if prep == "ل" and art else prep + art)
    for conj in ("", "و", "ف") for prep in ("", "ب", "ل", "ك") for art in ("", ARABIC_ARTICLE)
))
_VERB_CLITICS = frozenset(b"jmntsJMNTS")
_DOUBLE_GAPS_UP_TO = 3  # phrases with at most this many gaps get one-or-two-separator keys

Hit = tuple[int, int, int]  # (unit, start, end) in folded positions; start is the space before
_UNIT = itemgetter(0)
_NOTHING: frozenset = frozenset()


def _is_arabic(word: str) -> bool:
    return any("\u0600" <= c <= "\u06ff" for c in word)


def keys_of(term: Term) -> list[bytes]:
    """The automaton keys of a term: the folded words with their variants, space-bounded."""
    words = term.words
    close = "" if term.prefix else " "
    if term.arabic and _is_arabic(words[0]):
        # the phrase as written, and, when it is definite, without any article (indefinite)
        forms = [words[1:]]
        if term.definite and len(words) > 1:
            forms.append(tuple(strip_article(w) for w in words[1:]))
        texts = [p + words[0] + "".join(" " + w for w in rest)
                 for p in _PREFIXES for rest in dict.fromkeys(forms)]
    else:
        gaps = [" ", "  "] if len(words) - 1 <= _DOUBLE_GAPS_UP_TO else [" "]
        texts = [words[0] + "".join(s + w for s, w in zip(seps, words[1:], strict=True))
                 for seps in itertools.product(gaps, repeat=len(words) - 1)]
    return [(" " + text + close).encode(CODEPAGE) for text in texts]


def _automaton(keys: list[bytes]) -> ahocorasick_rs.BytesAhoCorasick:
    return ahocorasick_rs.BytesAhoCorasick(
        keys, implementation=ahocorasick_rs.Implementation.ContiguousNFA)


@dataclass(frozen=True)
class _Contained:
    offset: int   # where the inner key starts inside the outer one
    unit: int     # the inner unit
    groups: tuple[str, ...]  # the inner unit's groups that are not counted there
    checked: bool  # an acronym unit: found only where its capitals are (else always found)


class Matcher:
    """All the terms of a rule set, compiled once, matched in one pass per text."""

    def __init__(self, terms: tuple[Term, ...], masks: frozenset[str] = frozenset()) -> None:
        self.terms = terms
        by_key: dict[bytes, list[int]] = {}
        for index, term in enumerate(terms):
            for key in keys_of(term):
                by_key.setdefault(key, []).append(index)
        self.keys = list(by_key)
        count = len(self.keys)
        # Equal tuples are one object: most keys are variants of a term (articles, gaps) with
        # the same terms and groups, so the compiled rules pickle small and load fast (see
        # `cache`), and take less memory.
        shared: dict = {}
        one = shared.setdefault
        self.unit_terms: list[tuple[int, ...]] = [()] * (2 * count)
        self._capitals: list[bytes | None] = [None] * count
        for k, key in enumerate(self.keys):
            plain = tuple(t for t in by_key[key] if not terms[t].case_sensitive)
            exact = tuple(t for t in by_key[key] if terms[t].case_sensitive)
            self.unit_terms[k] = one(plain, plain)
            if exact:
                self.unit_terms[count + k] = one(exact, exact)
                self._capitals[k] = key.upper()  # acronyms are capitals and digits
        self.unit_groups = [one(gs, gs) for gs in (
            tuple(dict.fromkeys(terms[t].group for t in ts)) for ts in self.unit_terms)]
        self.group_unit_terms: dict[str, dict[int, tuple[int, ...]]] = {}  # unit's terms by group
        for unit, ts in enumerate(self.unit_terms):
            for group in self.unit_groups[unit]:
                found = tuple(t for t in ts if terms[t].group == group)
                self.group_unit_terms.setdefault(group, {})[unit] = one(found, found)
        # (term as written, group) of each unit, for counting terms without offsets
        self.unit_term_names = [one(names, names) for names in (
            tuple((terms[t].text, terms[t].group) for t in ts) for ts in self.unit_terms)]
        # the same, as counted for a match in the title: "^group" (see `tally`)
        titled = {gs: tuple("^" + g for g in gs) for gs in dict.fromkeys(self.unit_groups)}
        self.title_groups = [titled[gs] for gs in self.unit_groups]
        self.has_capitals = any(c is not None for c in self._capitals)
        self._automaton = _automaton(self.keys)
        containers = self._containments(masks)
        self._container_units = frozenset(containers)
        self._contained = {unit: tuple((c.offset, c.unit, c.groups, c.checked) for c in found)
                           for unit, found in containers.items()}  # plain, for speed
        self._plain = {k: g for gs in self.unit_groups for g in gs for k in (g, "^" + g)}
        self._capital_keys = frozenset(k for k, c in enumerate(self._capitals) if c is not None)

    def __getstate__(self) -> dict:
        """All but the automaton (no pickle for it): rebuilt from the keys, much faster than
        the rest (see `cache`)."""
        return {name: value for name, value in self.__dict__.items() if name != "_automaton"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._automaton = _automaton(self.keys)

    @property
    def key_count(self) -> int:
        return len(self.keys)

    def find(self, data: bytes) -> list[Hit]:
        """Every hit in a folded text (`Folded.data`), overlapping ones included."""
        found = self._automaton.find_matches_as_indexes(data.lower(), overlapping=True)
        if self.has_capitals and not self._capital_keys.isdisjoint(map(_UNIT, found)):
            capitals, shift = self._capitals, len(self.keys)
            found += [(shift + k, s, e) for k, s, e in found
                      if capitals[k] is not None and data[s:e] == capitals[k]
                      and not (data[s - 1] in _VERB_CLITICS and data[s - 2] == 32)]
        return found

    def uncounted(self, hits: list[Hit]) -> set[tuple[int, int, str]]:
        """(start, unit, group) of the hits that lie inside a longer hit of the same group or
        inside a hit of a mask group: they are matched but not counted."""
        containers = self._contained
        inside = [(s, u) for u, s, _ in hits if u in containers]
        if not inside:
            return set()
        present = None
        out: set[tuple[int, int, str]] = set()
        add = out.add
        for start, unit in inside:
            for offset, inner, groups, checked in containers[unit]:
                at = start + offset
                if checked:  # an acronym inside: there only if its capitals were
                    if present is None:
                        present = {(s, u) for u, s, _ in hits}
                    if (at, inner) not in present:
                        continue
                for group in groups:
                    add((at, inner, group))
        return out

    def _containments(self, masks: frozenset[str]) -> dict[int, tuple[_Contained, ...]]:
        count = len(self.keys)
        out: dict[int, list[_Contained]] = {}
        for k, key in enumerate(self.keys):
            inner = [(k2, s) for k2, s, e in
                     self._automaton.find_matches_as_indexes(key, overlapping=True)
                     if (s, e) != (0, len(key))]
            for unit in (k, count + k):
                groups = set(self.unit_groups[unit])
                if not groups:
                    continue
                hides_all = bool(groups & masks)
                for k2, start in inner:
                    for unit2 in (k2, count + k2):
                        hidden = tuple(g for g in self.unit_groups[unit2]
                                       if hides_all or g in groups)
                        if hidden:
                            out.setdefault(unit, []).append(
                                _Contained(start, unit2, hidden, unit2 >= count))
        return {unit: tuple(found) for unit, found in out.items()}

    def tally(self, hits: list[Hit], cut: int) -> tuple[dict, set[str], frozenset | set]:
        """What deciding needs, in one go: (`n`, present, uncounted). `n`: hits per group,
        `n[group]` in the body, `n["^" + group]` in the title (the hits that start before
        `cut`), `uncounted` taken off; present: the groups with a count above 0 in the title
        or the body; uncounted: as `uncounted`."""
        body = self.unit_groups
        n: dict[str, int] = {}
        get = n.get
        # A plain loop: texts have few hits (median 8), and for so few it is as fast as
        # Counter's C helper without Counter's set-up.
        if cut:
            title = self.title_groups
            for unit, start, _ in hits:
                for group in title[unit] if start < cut else body[unit]:
                    n[group] = get(group, 0) + 1
        else:
            for unit, _, _ in hits:
                for group in body[unit]:
                    n[group] = get(group, 0) + 1
        plain = self._plain  # "g" and "^g" -> "g"
        if self._container_units.isdisjoint(map(_UNIT, hits)):
            return n, set(map(plain.__getitem__, n)), _NOTHING
        uncounted = self.uncounted(hits)
        if not uncounted:
            return n, set(map(plain.__getitem__, n)), uncounted
        for start, _, group in uncounted:
            n["^" + group if start < cut else group] -= 1
        return n, {plain[g] for g, count in n.items() if count > 0}, uncounted
