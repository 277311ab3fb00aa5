"""Apply a `RuleSpec` to a text: matches, rules fired, score, topics, verdict. Pure.

In: a title and a body. Out: a `Verdict`: relevant or not, score, topics, and, computed when
asked, every match (term, group, field, offsets into the title or body) and every rule with the
weighted hits of the groups it names, whether it fired and why not. Matching is done by
`compile`, deciding by the function `decide` generates; this module counts, and explains.
Deciding needs only counts per group, so a verdict costs a fold, one automaton pass and a few
dictionary look-ups; the explanation is built on demand from the raw hits it keeps.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from itertools import compress
from operator import itemgetter
from typing import NamedTuple

from monitor.rules.compile import Hit, Matcher
from monitor.rules.decide import compile_rules
from monitor.rules.normalize import Folded, fold_text
from monitor.rules.ruleset import FIELDS, Rule, RuleSpec

# Title and body are folded as one text around a marker no key can cross.
_JOIN = " \x04 "
_UNIT = itemgetter(0)  # of a hit
_COUNT = itemgetter(1)  # of a (term, count)
_WORDS = bytes(32 if b == 32 else 120 for b in range(256))  # space stays, all else 'x'


class Match(NamedTuple):
    term: str
    group: str
    field: str  # "title" or "body"
    start: int  # offsets into that field's text
    end: int

    def as_dict(self) -> dict:
        return {"term": self.term, "group": self.group, "field": self.field,
                "start": self.start, "end": self.end}


class RuleOutcome(NamedTuple):
    name: str
    topic: str | None
    weight: float
    fired: bool
    hits: dict[str, float]  # group -> weighted hits, for the groups the rule names
    why: str


class _Counts:
    """What the rules ask of the hits of one text: counts per group and field, words, distances."""

    __slots__ = ("matcher", "title_weight", "data", "folded", "cut", "title_len", "hits",
                 "uncounted", "n", "present", "_words", "_words_at_least", "_word_at",
                 "_distinct", "lead_words", "_lead")

    def __init__(self, matcher: Matcher, title_weight: float, data: bytes, hits: list[Hit],
                 cut: int, folded: Folded | None = None, title_len: int = 0,
                 lead_words: int = 50) -> None:
        self.matcher, self.title_weight, self.data = matcher, title_weight, data
        self.folded, self.cut, self.title_len = folded, cut, title_len  # folded: for offsets
        self.lead_words = lead_words
        self._lead: dict[str, int] | None = None  # lead counts, as `n`; made when asked
        self.hits = hits
        # n: body n[g], title n["^" + g] (absent: 0); present: the groups matched, a first test
        self.n, self.present, self.uncounted = matcher.tally(hits, cut)
        self._words: int | None = None
        self._words_at_least = -1  # the words of a beginning of the text, once counted
        self._word_at: dict[int, int] | None = None
        self._distinct: dict[tuple[str, str | None], int] | None = None  # made when asked

    def count(self, kind: str, group: str, only: str | None = None) -> float:
        n = self.n
        if kind == "hits":
            title = n.get("^" + group, 0) * self.title_weight if only != "body" else 0.0
            return title + (n.get(group, 0) if only != "title" else 0)
        if kind in FIELDS:
            if only not in (None, kind):
                return 0.0
            return float(n.get("^" + group, 0) if kind == "title" else n.get(group, 0))
        if kind == "distinct":
            return float(self.distinct(group, only))
        if kind == "density":
            return self.count("hits", group, only) * 1000.0 / max(1, self.words())
        if kind == "lead":
            return float(self.lead(group, only))
        raise ValueError(f"unknown count {kind!r}")

    def lead(self, group: str, only: str | None) -> int:
        """Matches of `group` in the lead: the title and the first `lead_words` words of the
        body (where a story says what it is about), each counting one. Counted for every
        group in one pass, when first asked."""
        if self._lead is None:
            start = self.cut + 1 if self.cut else 0
            found = _lead_pattern(self.lead_words).match(self.data, start)
            end = found.end() if found else start
            counts: dict[str, int] = {}
            unit_groups, cut = self.matcher.unit_groups, self.cut
            for unit, at, _ in self.hits:
                if at < end:
                    for name in unit_groups[unit]:
                        key = name if at >= cut else "^" + name
                        counts[key] = counts.get(key, 0) + 1
            for at, _, name in self.uncounted:
                if at < end:
                    counts[name if at >= cut else "^" + name] -= 1
            self._lead = counts
        title = self._lead.get("^" + group, 0) if only != "body" else 0
        return title + (self._lead.get(group, 0) if only != "title" else 0)

    def distinct(self, group: str, only: str | None) -> int:
        """Different terms of `group` counted (in one field, or both)."""
        key = (group, only)
        if self._distinct is None:
            self._distinct = {}
        if key not in self._distinct:
            found: set[int] = set()
            terms_of = self.matcher.group_unit_terms.get(group, {})  # unit -> terms of group
            cut, uncounted, hits = self.cut, self.uncounted, self.hits
            for unit, start, _ in compress(hits, map(terms_of.__contains__, map(_UNIT, hits))):
                if (only is None or (start < cut) == (only == "title")) and (
                        not uncounted or (start, unit, group) not in uncounted):
                    found.update(terms_of[unit])
            self._distinct[key] = len(found)
        return self._distinct[key]

    def words(self, beyond: float | None = None) -> int:
        """Words in the title and body (counted when a rule asks). With `beyond`: the same,
        or, in a long text, the words of its beginning when they are already more than
        `beyond` (what a comparison with `beyond` needs)."""
        if self._words is None:  # a word is a space followed by a non-space
            data = self.data
            if beyond is not None and beyond >= 0:
                if self._words_at_least > beyond:
                    return self._words_at_least
                size = 8 * (int(beyond) + 2)  # words are seldom shorter than 7 letters
                if len(data) > size + size // 2:  # never more than the count of the whole text
                    part = data[:size].translate(_WORDS).count(b" x") - (1 if self.cut else 0)
                    if part > beyond:
                        self._words_at_least = part
                        return part
            self._words = data.translate(_WORDS).count(b" x") - (1 if self.cut else 0)
        return self._words

    def near(self, first: str, second: str, window: int, only: str | None = None) -> bool:
        if not (self.count("hits", first) and self.count("hits", second)):
            return False
        where = self._word_index()
        for name in FIELDS if only is None else (only,):
            a, b = [], []
            for unit, start, _ in self.hits:
                if ("title" if start < self.cut else "body") != name:
                    continue
                groups = self.matcher.unit_groups[unit]
                if first in groups and (start, unit, first) not in self.uncounted:
                    a.append(where[start])
                if second in groups and (start, unit, second) not in self.uncounted:
                    b.append(where[start])
            if any(abs(x - y) <= window for x in a for y in b):
                return True
        return False

    def _word_index(self) -> dict[int, int]:
        """Word number of each hit (counted once, lazily)."""
        if self._word_at is None:
            data, index, words, previous = self.data, {}, 0, 0
            for start in sorted({s for _, s, _ in self.hits}):
                words += len(data[previous:start + 1].split())
                index[start], previous = words, start + 1
            self._word_at = index
        return self._word_at

    def term_counts(self) -> list[tuple[str, int]]:
        """(term, times found), most found first, then in text order, as `Verdict.matches`
        gives them, but without working out offsets into the original text (what classifying
        many files pays for): a place (a term at a folded start) matched by two groups counts
        once, a hit not counted (`uncounted`) is not there."""
        names, uncounted = self.matcher.unit_term_names, self.uncounted
        places: dict[tuple[str, int], None] = {}
        # in text order, the longer first: (start, -end) never ties (one key per place)
        for start, _, unit in sorted([(start, -end, unit) for unit, start, end in self.hits]):
            for term, group in names[unit]:
                if not uncounted or (start, unit, group) not in uncounted:
                    places[term, start] = None
        counts: dict[str, int] = {}
        for term, _ in places:
            counts[term] = counts.get(term, 0) + 1
        return sorted(counts.items(), key=_COUNT, reverse=True)  # stable: ties in text order

    def matches(self) -> list[Match]:
        """Every hit as a `Match`, offsets into the title or the body, in text order."""
        matcher, folded, data = self.matcher, self.folded, self.data
        assert folded is not None, "offsets need the folded text (see Verdict.matches)"
        offset = self.title_len + len(_JOIN) + 1 if self.cut else 0
        out = []
        for unit, start, end in sorted(self.hits, key=lambda h: (h[1], -h[2])):
            if data[end - 1] != 32:
                stop = data.find(b" ", end)  # a prefix term: to the end of the word
                end = stop if stop != -1 else len(data)
            else:
                end -= 1
            ostart, oend = folded.start(start + 1), folded.end(end)
            field, shift = ("title", 1) if start < self.cut else ("body", offset)
            for term in matcher.unit_terms[unit]:
                group = matcher.terms[term].group
                if (start, unit, group) not in self.uncounted:
                    out.append(Match(matcher.terms[term].text, group, field,
                                     ostart - shift, oend - shift))
        return list(dict.fromkeys(out))


@lru_cache(maxsize=8)
def _lead_pattern(words: int) -> re.Pattern[bytes]:
    """Up to `words` words of a folded text (where every separator is a space)."""
    return re.compile(rb"(?: *[^ ]+){1,%d}" % words)


class _View:
    """`_Counts` restricted to one field, as a rule with `field:` sees them."""

    def __init__(self, counts: _Counts, only: str | None) -> None:
        self.counts, self.only = counts, only

    def count(self, kind: str, group: str) -> float:
        return self.counts.count(kind, group, self.only)

    def near(self, first: str, second: str, window: int) -> bool:
        return self.counts.near(first, second, window, self.only)

    def words(self) -> int:
        return self.counts.words()


class Outcome(NamedTuple):
    """What a set of fired rules adds up to (the same for every text that fires them)."""

    score: float
    relevant: bool
    topics: tuple[str, ...]


class Verdict:
    """The decision on one text and everything needed to explain it. Treat as read-only."""

    __slots__ = ("relevant", "score", "topics", "threshold", "version", "fired", "_spec",
                 "_counts", "_rules", "_matches")

    # Positional and few: one is made per text (keyword arguments cost 1% of a short text)
    def __init__(self, outcome: Outcome, fired: tuple[bool, ...], spec: RuleSpec,
                 counts: _Counts) -> None:
        self.score, self.relevant, self.topics = outcome
        self.threshold, self.version = spec.threshold, spec.version
        self.fired = fired  # per rule of the rule set, in order
        self._spec, self._counts = spec, counts
        self._rules: tuple[RuleOutcome, ...] | None = None
        self._matches: tuple[Match, ...] | None = None

    def __repr__(self) -> str:
        return (f"Verdict(relevant={self.relevant}, score={self.score:g}, topics={self.topics}, "
                f"version={self.version!r})")

    @property
    def matches(self) -> tuple[Match, ...]:
        """Every match, title first, in text order (built when first asked)."""
        if self._matches is None:
            self._matches = tuple(self._counts.matches())
        return self._matches

    @property
    def rules(self) -> tuple[RuleOutcome, ...]:
        """Every rule, fired or not, with the hits of the groups it names and why (built when
        first asked: classifying many texts does not pay for explanations)."""
        if self._rules is None:
            out = []
            for rule, fired in zip(self._spec.rules, self.fired, strict=True):
                view = _View(self._counts, rule.field)
                hits = {group: view.count("hits", group) for group in rule.groups}
                why = "fired" if fired else _explain(rule, _unmet(rule, view))
                out.append(RuleOutcome(rule.name, rule.topic, rule.weight, fired, hits, why))
            self._rules = tuple(out)
        return self._rules

    def term_counts(self) -> list[dict]:
        """`counted_terms` as {"term", "count"} objects."""
        return [{"term": term, "count": count} for term, count in self.counted_terms()]

    def counted_terms(self) -> list[tuple[str, int]]:
        """(term, times found) as in `matches`, most found first; a place counts once."""
        return self._counts.term_counts()

    def matches_with_rules(self) -> list[dict]:
        """Each match with the fired rules that use its group."""
        by_group: dict[str, list[str]] = defaultdict(list)
        for rule, fired in zip(self._spec.rules, self.fired, strict=True):
            if fired:
                for group in rule.groups:
                    by_group[group].append(rule.name)
        return [{"term": m.term, "group": m.group, "field": m.field, "start": m.start,
                 "end": m.end, "rules": by_group.get(m.group, [])} for m in self.matches]

    def as_dict(self) -> dict:
        """The whole explanation as plain data (for --json)."""
        return {
            "relevant": self.relevant, "score": self.score, "threshold": self.threshold,
            "topics": list(self.topics), "version": self.version,
            "rules": [{"rule": o.name, "topic": o.topic, "weight": o.weight, "fired": o.fired,
                       "hits": o.hits, "why": o.why} for o in self.rules],
            "matches": self.matches_with_rules(),
        }


class RuleSet:
    """Compiled rules, ready to classify many texts."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.version = spec.version
        self.matcher = Matcher(spec.terms, spec.masks)
        self._decide = compile_rules(spec.rules)
        self._weights = [rule.weight for rule in spec.rules]
        self._positive = [rule.weight > 0 for rule in spec.rules]
        self._topics = [rule.topic if rule.weight > 0 else None for rule in spec.rules]
        self._outcomes: dict[tuple[bool, ...], Outcome] = {}

    def __getstate__(self) -> dict:
        """All but the generated function (no pickle for it): generated again, in ms."""
        return {name: value for name, value in self.__dict__.items() if name != "_decide"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._decide = compile_rules(self.spec.rules)

    def classify(self, title: str, body: str) -> Verdict:
        if title:
            folded = fold_text(f" {title}{_JOIN}{body} ", padded=True)
            data = folded.data
            cut = data.find(b"\x04")
        else:
            folded = fold_text(body)
            data, cut = folded.data, 0
        return self._verdict(_Counts(self.matcher, self.spec.title_weight, data,
                                     self.matcher.find(data), cut, folded, len(title),
                                     self.spec.lead_words))

    def _verdict(self, counts: _Counts) -> Verdict:
        spec = self.spec
        fired = self._decide(counts.n, counts.present, spec.title_weight, counts)
        outcome = self._outcomes.get(fired)
        if outcome is None:  # score, relevance and topics depend on `fired` alone
            score = round(sum(compress(self._weights, fired)), 4)
            positive = any(compress(self._positive, fired))
            topics = tuple(dict.fromkeys(t for t in compress(self._topics, fired) if t))
            outcome = Outcome(score, positive and score >= spec.threshold, topics)
            if len(self._outcomes) < 100_000:
                self._outcomes[fired] = outcome
        return Verdict(outcome, fired, spec, counts)


def _meets(rule: Rule, view: _View, group: str) -> bool:
    return (view.count("hits", group) >= rule.min_hits
            and (rule.min_distinct <= 1 or view.count("distinct", group) >= rule.min_distinct))


def _unmet(rule: Rule, view: _View) -> tuple | None:
    """Why the rule does not fire (a reason and its groups), or None when it does."""
    missing = [g for g in rule.all if not _meets(rule, view, g)]
    if missing:
        return ("all", missing)
    if rule.any and not any(_meets(rule, view, g) for g in rule.any):
        return ("any", rule.any)
    vetoed = [g for g in rule.none if view.count("hits", g) > 0]
    if vetoed:
        return ("none", vetoed)
    if rule.near and rule.window and not view.near(rule.near[0], rule.near[1], rule.window):
        return ("near", rule.near)
    if rule.when is not None and not rule.when.evaluate(view):
        return ("when", ())
    return None


def _explain(rule: Rule, reason: tuple | None) -> str:
    if reason is None:
        return "fired"
    kind, groups = reason
    where = f" in the {rule.field}" if rule.field else ""
    distinct = f" ({rule.min_distinct} different terms)" if rule.min_distinct > 1 else ""
    need = f"{rule.min_hits:g} hits{distinct}"
    if kind == "all":
        return f"needs {need} of {', '.join(groups)}{where}"
    if kind == "any":
        return f"needs {need} of one of {', '.join(groups)}{where}"
    if kind == "none":
        return f"vetoed by {', '.join(groups)}{where}"
    if kind == "near":
        return f"no {groups[0]} within {rule.window} words of {groups[1]}{where}"
    return f"condition not met: {rule.when_text}"
