"""Suggest terms for the rules: the words and phrases of labelled texts that best tell relevant
from not relevant and that no group of the rules holds yet. Pure.

In: labelled items (anything with ``title``, ``body``, ``relevant`` and ``lang``, such as the
`Labelled` items `evaluate.read_labelled` reads), the current `RuleSet`, options. Out: one
`Suggestions` per language, its candidates for each side with how many texts of each side have
them and a score. Candidates only: nothing is written or applied.

- Words are the rules' own folded words (`normalize.fold`: case, accents, Arabic letter forms,
  punctuation as spaces), so a candidate reads as the term that would match it. Candidates are
  phrases of 1 to `longest` words, counted once per text (in how many texts of each side), the
  title and the body apart (no phrase runs from one into the other). A phrase begins and ends
  with a word of two letters or more that is not a number.
- Score: the z-score of the log-odds ratio of a phrase's presence in relevant against not
  relevant texts, with an informative Dirichlet (here Beta) prior: the phrase's rate over all
  the texts (add-one smoothed), worth `PRIOR_TEXTS` texts (Monroe, Colaresi and Quinn 2008,
  "Fightin' Words", section 3.5). Words spread evenly (articles, prepositions) score near 0
  and rare ones are shrunk towards it, so no stop-word list is needed. A candidate scores at
  least `MIN_SCORE` (either sign) and is in at least `min_count` texts of the side it points
  to.
- Left out: a candidate the rules already match, or that contains a term they match, found by
  running the rules' own matcher over the candidate (prefix terms, Arabic proclitics and
  article, phrases with their separators, acronyms, as in a text); and a phrase one of whose
  shorter parts is in the same texts (same counts on both sides: the part says the same).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from monitor.rules.engine import RuleSet
from monitor.rules.normalize import fold, fold_text

PRIOR_TEXTS = 4.0  # the prior's weight, in texts
MIN_SCORE = 1.96  # |z| below this: no evidence either way (two-sided 5%)
SIDES = ("relevant", "not relevant")


class LabelledText(Protocol):
    title: str
    body: str
    relevant: bool
    lang: str | None


@dataclass(frozen=True)
class Candidate:
    phrase: str  # folded words, one space apart
    side: str  # the side it points to: "relevant" or "not relevant"
    relevant: int  # texts labelled relevant that have it
    not_relevant: int  # texts labelled not relevant that have it
    score: float  # z-score of the log-odds ratio (positive: relevant)
    log_odds: float

    @property
    def words(self) -> int:
        return self.phrase.count(" ") + 1

    def as_dict(self) -> dict:
        return {"phrase": self.phrase, "words": self.words, "side": self.side,
                "relevant": self.relevant, "not_relevant": self.not_relevant,
                "score": round(self.score, 3), "log_odds": round(self.log_odds, 3)}


@dataclass(frozen=True)
class Suggestions:
    lang: str | None  # None: the texts that say no language
    relevant_texts: int
    not_relevant_texts: int
    candidates: tuple[Candidate, ...]  # the relevant side first, each side best first


def suggest(items: Iterable[LabelledText], rules: RuleSet, *, lang: str | None = None,
            top: int = 20, min_count: int = 3, longest: int = 3) -> list[Suggestions]:
    """The best `top` candidates of each side, per language (only `lang` when given), the
    languages with the most texts first (then as first met)."""
    tallies: dict[str | None, _Tally] = {}
    for item in items:
        if lang is None or item.lang == lang:
            tallies.setdefault(item.lang, _Tally()).add(item, longest)
    held = _Held(rules)
    return [tally.suggestions(text_lang, held, top=top, min_count=min_count)
            for text_lang, tally in sorted(tallies.items(), key=lambda kv: -kv[1].texts)]


class _Tally:
    """How many texts of each side have each phrase, for one language."""

    def __init__(self) -> None:
        self.counts: tuple[Counter[str], Counter[str]] = (Counter(), Counter())
        self.sizes = [0, 0]  # texts: relevant, not relevant

    @property
    def texts(self) -> int:
        return sum(self.sizes)

    def add(self, item: LabelledText, longest: int) -> None:
        side = 0 if item.relevant else 1
        self.sizes[side] += 1
        phrases: set[str] = set()
        for part in (item.title, item.body):
            phrases.update(_phrases(fold(part).split(), longest))
        self.counts[side].update(phrases)

    def suggestions(self, lang: str | None, held: _Held, *, top: int,
                    min_count: int) -> Suggestions:
        found: dict[str, list[Candidate]] = {side: [] for side in SIDES}
        if all(self.sizes):  # with one side only, nothing tells them apart
            scored = sorted(self._scored(min_count), key=lambda c: (-abs(c.score), c.words,
                                                                     c.phrase))
            for candidate in scored:
                chosen = found[candidate.side]
                if len(chosen) < top and not self._says_less(candidate.phrase) \
                        and not held(candidate.phrase):
                    chosen.append(candidate)
        return Suggestions(lang, self.sizes[0], self.sizes[1],
                           tuple(found[SIDES[0]] + found[SIDES[1]]))

    def _scored(self, min_count: int) -> Iterator[Candidate]:
        relevant, other = self.counts
        for phrase in relevant.keys() | other.keys():
            a, b = relevant[phrase], other[phrase]
            if max(a, b) < min_count:
                continue
            log_odds, score = log_odds_z(a, self.sizes[0], b, self.sizes[1])
            side = SIDES[0] if score > 0 else SIDES[1]
            if abs(score) >= MIN_SCORE and (a if side == SIDES[0] else b) >= min_count:
                yield Candidate(phrase, side, a, b, score, log_odds)

    def _says_less(self, phrase: str) -> bool:
        """True when a shorter part of the phrase is in exactly the same texts (its texts
        include the phrase's, so the same counts mean the same texts)."""
        words = phrase.split(" ")
        if len(words) == 1:
            return False
        counts = (self.counts[0][phrase], self.counts[1][phrase])
        return any((self.counts[0][part], self.counts[1][part]) == counts
                   for part in (" ".join(words[1:]), " ".join(words[:-1])))


def log_odds_z(a: int, relevant_texts: int, b: int, other_texts: int) -> tuple[float, float]:
    """(log-odds ratio, its z-score) of a phrase in `a` of `relevant_texts` texts and `b` of
    `other_texts`, with the informative prior of the module docstring."""
    rate = (a + b + 1) / (relevant_texts + other_texts + 2)  # never 0 or 1: both cells > 0
    present, absent = PRIOR_TEXTS * rate, PRIOR_TEXTS * (1 - rate)
    cells = (a + present, relevant_texts - a + absent, b + present, other_texts - b + absent)
    log_odds = math.log(cells[0] / cells[1]) - math.log(cells[2] / cells[3])
    return log_odds, log_odds / math.sqrt(sum(1 / cell for cell in cells))


def _phrases(words: list[str], longest: int) -> Iterator[str]:
    """The phrases of 1..`longest` words that begin and end with a word that can be a term's."""
    usable = [_can_end(w) for w in words]
    for start, word in enumerate(words):
        if not usable[start]:
            continue
        yield word
        for end in range(start + 1, min(start + longest, len(words))):
            if "_" in words[end]:
                break  # a word of another script: never matched, and no phrase goes through it
            if usable[end]:
                yield " ".join(words[start:end + 1])


def _can_end(word: str) -> bool:
    return len(word) >= 2 and not word.isdigit() and "_" not in word


class _Held:
    """Whether the rules already match a candidate, or a term inside it: the rules' own
    matcher run over the candidate as over a text."""

    def __init__(self, rules: RuleSet) -> None:
        self.matcher = rules.matcher
        self._seen: dict[str, bool] = {}

    def __call__(self, phrase: str) -> bool:
        found = self._seen.get(phrase)
        if found is None:
            found = self._seen[phrase] = bool(self.matcher.find(fold_text(phrase).data))
        return found
