"""Apply a `RuleSpec` to a text: matches, rules fired, score, topics, verdict. Pure.

In: a title and a body. Out: a `Verdict` that keeps every match (term, group, field, offsets)
and, per rule, the weighted hits per group and whether it fired, so any verdict can be
explained. Terms are indexed by their first folded word, so a text is read once whatever the
number of terms.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from monitor.rules.normalize import Token, tokenize
from monitor.rules.ruleset import Rule, RuleSpec, Term


@dataclass(frozen=True, slots=True)
class Match:
    term: str
    group: str
    field: str  # "title" or "body"
    start: int
    end: int

    def as_dict(self) -> dict:
        return {"term": self.term, "group": self.group, "field": self.field,
                "start": self.start, "end": self.end}


@dataclass(frozen=True)
class RuleOutcome:
    name: str
    topic: str | None
    weight: float
    fired: bool
    hits: dict[str, float]  # group -> weighted hits, for the groups the rule names
    why: str


@dataclass(frozen=True)
class Verdict:
    relevant: bool
    score: float
    topics: tuple[str, ...]
    matches: tuple[Match, ...]
    rules: tuple[RuleOutcome, ...]
    threshold: float
    version: str

    def term_counts(self) -> list[dict]:
        counts = Counter(m.term for m in self.matches)
        return [{"term": term, "count": count} for term, count in counts.most_common()]

    def matches_with_rules(self) -> list[dict]:
        """Each match with the fired rules that used its group."""
        by_group: dict[str, list[str]] = defaultdict(list)
        for outcome in self.rules:
            if outcome.fired:
                for group in outcome.hits:
                    by_group[group].append(outcome.name)
        return [{**m.as_dict(), "rules": by_group.get(m.group, [])} for m in self.matches]


class RuleSet:
    """Compiled rules, ready to classify many texts."""

    def __init__(self, spec: RuleSpec) -> None:
        self.spec = spec
        self.version = spec.version
        self._exact: dict[str, list[Term]] = defaultdict(list)
        self._folded: dict[str, list[Term]] = defaultdict(list)
        self._prefixes: list[Term] = []
        for term in spec.terms:
            if term.prefix and len(term.words) == 1:
                self._prefixes.append(term)
            elif term.case_sensitive:
                self._exact[term.words[0]].append(term)
            else:
                self._folded[term.words[0]].append(term)
        self._prefix_starts = tuple(term.words[0] for term in self._prefixes)

    def classify(self, title: str, body: str) -> Verdict:
        matches = self._find(title, "title") + self._find(body, "body")
        weights = {"title": self.spec.title_weight, "body": 1.0}
        hits: dict[str, float] = defaultdict(float)
        for match in matches:
            hits[match.group] += weights[match.field]
        outcomes = tuple(self._apply(rule, hits) for rule in self.spec.rules)
        score = round(sum(o.weight for o in outcomes if o.fired), 4)
        topics = tuple(dict.fromkeys(o.topic for o in outcomes if o.fired and o.topic))
        relevant = score >= self.spec.threshold and any(o.weight > 0 for o in outcomes if o.fired)
        return Verdict(relevant=relevant, score=score, topics=topics, matches=tuple(matches),
                       rules=outcomes, threshold=self.spec.threshold, version=self.version)

    def _apply(self, rule: Rule, hits: dict[str, float]) -> RuleOutcome:
        named = dict.fromkeys((*rule.all, *rule.any, *rule.none), 0.0)
        for group in named:
            named[group] = hits.get(group, 0.0)
        missing = [g for g in rule.all if named[g] < rule.min_hits]
        any_ok = not rule.any or any(named[g] >= rule.min_hits for g in rule.any)
        vetoed = [g for g in rule.none if named[g] > 0]
        fired = not missing and any_ok and not vetoed
        if fired:
            why = "fired"
        elif missing:
            why = f"needs {rule.min_hits:g} hits of {', '.join(missing)}"
        elif not any_ok:
            why = f"needs {rule.min_hits:g} hits of one of {', '.join(rule.any)}"
        else:
            why = f"vetoed by {', '.join(vetoed)}"
        return RuleOutcome(name=rule.name, topic=rule.topic, weight=rule.weight, fired=fired,
                           hits=named, why=why)

    def _find(self, text: str, field: str) -> list[Match]:
        if not text:
            return []
        tokens = tokenize(text)
        found: list[Match] = []
        for index, token in enumerate(tokens):
            for term in self._exact.get(token.exact, ()):
                end = _match_at(tokens, index, term)
                if end is not None:
                    found.append(Match(term.text, term.group, field, token.start, end))
            for form in token.forms:
                for term in self._folded.get(form, ()):
                    end = _match_at(tokens, index, term)
                    if end is not None:
                        found.append(Match(term.text, term.group, field, token.start, end))
            if self._prefix_starts and token.forms[0].startswith(self._prefix_starts):
                for term in self._prefixes:
                    if any(form.startswith(term.words[0]) for form in token.forms):
                        found.append(Match(term.text, term.group, field, token.start, token.end))
        return _dedupe(found)


def _match_at(tokens: list[Token], index: int, term: Term) -> int | None:
    """End offset if `term` matches the tokens starting at `index`."""
    if index + len(term.words) > len(tokens):
        return None
    for offset, word in enumerate(term.words[1:], start=1):
        token = tokens[index + offset]
        last = offset == len(term.words) - 1
        if term.case_sensitive:
            ok = token.exact == word
        elif last and term.prefix:
            ok = any(form.startswith(word) for form in token.forms)
        else:
            ok = word in token.forms
        if not ok:
            return None
    return tokens[index + len(term.words) - 1].end


def _dedupe(matches: list[Match]) -> list[Match]:
    """One match per group and span start: the longest term wins ('loi 09-08' over 'loi')."""
    best: dict[tuple[str, int], Match] = {}
    for match in matches:
        key = (match.group, match.start)
        if key not in best or match.end > best[key].end:
            best[key] = match
    return sorted(best.values(), key=lambda m: (m.field != "title", m.start))
