"""The rule language: rules.yaml -> a validated `RuleSpec`. Pure apart from reading the file.

In: the path of rules.yaml. Out: `RuleSpec` (terms by group, rules, threshold, title weight and a
version hash); raises `RulesError` naming the file, line and key for an unknown key or group, a
bad weight, an empty rule, an invalid term or expression.

    threshold: 3            # score at or above which an item is relevant
    title_weight: 2         # a match in the title counts this many times (default 1)
    groups:
      morocco:              # terms per language (fr, ar, en) or 'any' for all of them
        fr: [maroc, marocain*, rabat]      # a trailing * makes the last word a prefix
        ar: [المغرب, مغربي*]               # Arabic terms also match with و ف ب ل ك and ال in front
        en: [morocco, moroccan*]
      ai:
        any: [IA, AI]       # all-capitals terms match case-sensitively ('IA' is not 'via')
      minister-titles:
        mask: true          # a match hides the matches of other groups inside it
        fr: [ministre de l'industrie et de l'économie numérique]
    rules:
      - name: morocco-ai
        topic: ai           # ai | cyber | data-protection | digital-policy (none: a modifier)
        all: [morocco, ai]  # every group must hit (min_hits weighted hits, min_distinct terms)
        any: [policy]       # at least one of these groups must hit the same way
        none: [sport]       # none of these may hit at all
        min_hits: 2         # default 1; title matches count title_weight each
        min_distinct: 1     # default 1: different terms of the group
        field: title        # count only matches in the title (or body); default both
        near: [morocco, ai] # a match of each of these groups within `window` words (same field)
        window: 30
        when: "hits(ai) >= 3 and not sport"   # an expression (see `expression`), ANDed in
        weight: 2           # added to the score when the rule fires; may be negative
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from monitor.errors import RulesError
from monitor.rules.expression import Expr, ExpressionError, parse_expression
from monitor.rules.normalize import fold
from monitor.yamlfile import YamlDocument, read_yaml

LANGUAGES = ("fr", "ar", "en", "any")
TOPICS = ("ai", "cyber", "data-protection", "digital-policy")
FIELDS = ("title", "body")
_ACRONYM = re.compile(r"^[A-Z0-9][A-Z0-9-]*[A-Z][A-Z0-9-]*$")
_ARABIC = re.compile("[\u0600-\u06ff]")
ARABIC_ARTICLE = "ال"
_RULE_KEYS = ("name", "topic", "all", "any", "none", "min_hits", "min_distinct", "field",
              "near", "window", "when", "weight")


@dataclass(frozen=True)
class Term:
    text: str               # as written in rules.yaml
    group: str
    words: tuple[str, ...]  # folded words
    prefix: bool            # last word matched as a prefix (written with a trailing '*')
    case_sensitive: bool    # an all-capitals acronym: matched on the exact form
    arabic: bool            # Arabic script: proclitics and the article are expanded
    definite: bool = False  # Arabic written with the article on its first word


@dataclass(frozen=True)
class Rule:
    name: str
    topic: str | None
    all: tuple[str, ...]
    any: tuple[str, ...]
    none: tuple[str, ...]
    min_hits: float
    min_distinct: int
    field: str | None
    near: tuple[str, ...]
    window: int | None
    when: Expr | None
    when_text: str | None
    weight: float

    @cached_property
    def groups(self) -> tuple[str, ...]:
        """Every group the rule looks at, in order of first mention."""
        named = [*self.all, *self.any, *self.none, *self.near]
        if self.when is not None:
            named += self.when.groups()
        return tuple(dict.fromkeys(named))


@dataclass(frozen=True)
class RuleSpec:
    path: Path
    threshold: float
    title_weight: float
    terms: tuple[Term, ...]
    groups: tuple[str, ...]
    rules: tuple[Rule, ...]
    version: str
    masks: frozenset[str] = frozenset()  # groups whose matches hide the matches inside them


def load_rules(path: Path) -> RuleSpec:
    doc = read_yaml(path, error=RulesError)
    data = doc.data
    if not isinstance(data, dict):
        raise RulesError("expected a mapping with 'groups' and 'rules'", path=str(path), line=1)
    for key in data:
        if key not in ("threshold", "title_weight", "groups", "rules"):
            _fail(doc, [key], "unknown key; valid keys are threshold, title_weight, groups, rules")
    threshold = _number(doc, ["threshold"], data.get("threshold", 1.0))
    title_weight = _number(doc, ["title_weight"], data.get("title_weight", 1.0), positive=True)
    groups_raw = data.get("groups")
    if not isinstance(groups_raw, dict) or not groups_raw:
        _fail(doc, ["groups"], "expected a mapping of group names to terms per language")
    terms: list[Term] = []
    masks = set()
    for group, by_lang in groups_raw.items():
        if isinstance(by_lang, dict) and by_lang.get("mask") is not None:
            if by_lang["mask"] is not True:
                _fail(doc, ["groups", group, "mask"], "mask is 'true' or absent")
            masks.add(str(group))
            by_lang = {k: v for k, v in by_lang.items() if k != "mask"}
        terms.extend(_group_terms(doc, str(group), by_lang))
    rules_raw = data.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        _fail(doc, ["rules"], "expected a list of rules")
    groups = {str(g) for g in groups_raw}
    rules = tuple(_rule(doc, index, raw, groups) for index, raw in enumerate(rules_raw))
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            _fail(doc, ["rules", index, "name"], f"rule name {rule.name!r} is used twice")
        seen.add(rule.name)
    return RuleSpec(
        path=path, threshold=threshold, title_weight=title_weight, terms=tuple(terms),
        groups=tuple(str(g) for g in groups_raw), rules=rules,
        version=rules_version(threshold, title_weight, groups_raw, rules_raw),
        masks=frozenset(masks),
    )


def rules_version(threshold: float, title_weight: float, groups: Any, rules: Any) -> str:
    """Hash of the rules as parsed (comments, layout and key order do not count)."""
    canonical = json.dumps(
        {"threshold": threshold, "title_weight": title_weight, "groups": groups, "rules": rules},
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _group_terms(doc: YamlDocument, group: str, by_lang: Any) -> list[Term]:
    if not isinstance(by_lang, dict) or not by_lang:
        _fail(doc, ["groups", group], f"group {group!r} needs terms per language: fr, ar, en, any")
    terms: dict[tuple, Term] = {}
    for lang, raw_terms in by_lang.items():
        if lang not in LANGUAGES:
            _fail(doc, ["groups", group, lang], f"unknown language; use one of {LANGUAGES}")
        if not isinstance(raw_terms, list):
            _fail(doc, ["groups", group, lang], "expected a list of terms")
        for index, raw in enumerate(raw_terms):
            term = parse_term(raw, group, lambda message, i=index, lg=lang: _fail(
                doc, ["groups", group, lg, i], message))
            terms.setdefault((term.words, term.prefix, term.case_sensitive), term)
    return list(terms.values())


def parse_term(raw: Any, group: str, fail: Any) -> Term:
    """One term as written in rules.yaml; `fail(message)` raises for an invalid one."""
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        fail(f"invalid term {raw!r}: a term is a word or phrase")
    text = str(raw).strip()
    prefix = text.endswith("*")
    body = text.rstrip("*").strip()
    if "*" in body:
        fail(f"invalid term {text!r}: '*' is allowed only at the end (a prefix)")
    words = tuple(fold(body).split())
    if not words:
        fail(f"invalid term {text!r}: it has no letters or digits")
    if any("_" in word for word in words):
        fail(f"invalid term {text!r}: only Latin and Arabic letters and digits can be matched")
    arabic = bool(_ARABIC.search(body))
    definite = arabic and strip_article(words[0]) != words[0]
    if arabic:
        words = (strip_article(words[0]), *words[1:])
    if prefix and len(words) == 1 and len(words[0]) < 3:
        fail(f"invalid term {text!r}: a prefix needs at least 3 letters")
    case_sensitive = bool(_ACRONYM.match(body.replace(" ", "")))
    return Term(text=text, group=group, words=words, prefix=prefix,
                case_sensitive=case_sensitive, arabic=arabic, definite=definite)


def strip_article(word: str) -> str:
    """An Arabic word without its definite article (kept when too little would be left)."""
    if word.startswith(ARABIC_ARTICLE) and len(word) >= 4:
        return word[2:]
    return word


def _rule(doc: YamlDocument, index: int, raw: Any, groups: set[str]) -> Rule:
    loc: list = ["rules", index]
    if not isinstance(raw, dict):
        _fail(doc, loc, "a rule is a mapping with name, all/any/none or when, weight")
    for key in raw:
        if key not in _RULE_KEYS:
            _fail(doc, [*loc, key], f"unknown key; valid keys are {', '.join(_RULE_KEYS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        _fail(doc, [*loc, "name"], "each rule needs a name")
    topic = raw.get("topic")
    if topic is not None and topic not in TOPICS:
        _fail(doc, [*loc, "topic"], f"unknown topic {topic!r}; use one of {', '.join(TOPICS)}")
    lists = {key: _group_list(doc, [*loc, key], raw.get(key, []), groups)
             for key in ("all", "any", "none", "near")}
    when, when_text = None, raw.get("when")
    if when_text is not None:
        if not isinstance(when_text, str) or not when_text.strip():
            _fail(doc, [*loc, "when"], "expected an expression, e.g. \"morocco and hits(ai) >= 2\"")
        try:
            when = parse_expression(when_text)
        except ExpressionError as exc:
            _fail(doc, [*loc, "when"], f"invalid expression: {exc}")
        for group in when.groups():
            if group not in groups:
                _fail(doc, [*loc, "when"],
                      f"unknown group {group!r}; defined groups: {', '.join(sorted(groups))}")
    if not lists["all"] and not lists["any"] and when is None:
        _fail(doc, loc, f"rule {name!r} is empty: give it groups under 'all' or 'any', or 'when'")
    weight = _number(doc, [*loc, "weight"], raw.get("weight", 1.0))
    if weight == 0:
        _fail(doc, [*loc, "weight"], "a weight of 0 makes the rule do nothing; remove it instead")
    min_hits = _number(doc, [*loc, "min_hits"], raw.get("min_hits", 1), positive=True)
    min_distinct = _number(doc, [*loc, "min_distinct"], raw.get("min_distinct", 1),
                           positive=True)
    if min_distinct != int(min_distinct):
        _fail(doc, [*loc, "min_distinct"], "min_distinct is a whole number of different terms")
    field = raw.get("field")
    if field is not None and field not in FIELDS:
        _fail(doc, [*loc, "field"], f"unknown field {field!r}; use title or body")
    window = raw.get("window")
    if lists["near"] or window is not None:
        if len(lists["near"]) != 2:
            _fail(doc, [*loc, "near"], "near names two groups, e.g. near: [morocco, ai]")
        if window is None:
            _fail(doc, [*loc, "near"], "near needs a window: the most words between the two")
        window = _number(doc, [*loc, "window"], window, positive=True)
        if window != int(window):
            _fail(doc, [*loc, "window"], "window is a whole number of words")
    return Rule(name=name, topic=topic, all=lists["all"], any=lists["any"], none=lists["none"],
                min_hits=min_hits, min_distinct=int(min_distinct), field=field,
                near=lists["near"], window=int(window) if window is not None else None,
                when=when, when_text=when_text, weight=weight)


def _group_list(doc: YamlDocument, loc: list, value: Any, groups: set[str]) -> tuple[str, ...]:
    if not isinstance(value, list):
        _fail(doc, loc, "expected a list of group names")
    for position, group in enumerate(value):
        if group not in groups:
            _fail(doc, [*loc, position],
                  f"unknown group {group!r}; defined groups: {', '.join(sorted(groups))}")
    return tuple(value)


def _number(doc: YamlDocument, loc: list, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(doc, loc, f"{value!r} is not a number")
    if positive and value <= 0:
        _fail(doc, loc, f"{value!r} must be a positive number")
    return float(value)


def _fail(doc: YamlDocument, loc: list, message: str) -> None:
    key = next((str(s) for s in reversed(loc) if isinstance(s, str)), None)
    raise RulesError(message, path=str(doc.path), line=doc.line_of(loc), key=key)
