"""The rule language: rules.yaml -> a validated `RuleSpec`. Pure apart from reading the file.

In: the path of rules.yaml. Out: `RuleSpec` (term groups, rules, threshold, title weight and a
version hash); raises `RulesError` with file, line and key for an unknown group, a bad weight,
an empty rule or an invalid term.

    threshold: 2            # score at or above which an item is relevant
    title_weight: 2         # a hit in the title counts this many times
    groups:
      morocco:              # terms per language; 'any' for names shared by all
        fr: [maroc, marocain*, rabat]
        ar: [المغرب]
        en: [morocco, moroccan*]
      ai:
        any: [IA, AI]       # all-capitals terms match case-sensitively ('IA' is not 'via')
    rules:
      - name: morocco-ai
        topic: ai
        all: [morocco, ai]  # every group must hit (at least min_hits weighted hits each)
        any: []             # at least one of these groups must hit
        none: []            # none of these may hit
        min_hits: 2
        weight: 2
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.errors import RulesError
from monitor.rules.normalize import term_key
from monitor.yamlfile import YamlDocument, read_yaml

LANGUAGES = ("fr", "ar", "en", "any")
TOPICS = ("ai", "cyber", "data-protection", "digital-policy")
_ACRONYM = re.compile(r"^[A-Z0-9][A-Z0-9-]*[A-Z][A-Z0-9-]*$")


@dataclass(frozen=True)
class Term:
    text: str             # as written in rules.yaml
    group: str
    words: tuple[str, ...]  # folded words to match
    prefix: bool          # last word matched as a prefix (written with a trailing '*')
    case_sensitive: bool  # an all-capitals acronym: matched on the exact form


@dataclass(frozen=True)
class Rule:
    name: str
    topic: str | None
    all: tuple[str, ...]
    any: tuple[str, ...]
    none: tuple[str, ...]
    min_hits: float
    weight: float


@dataclass(frozen=True)
class RuleSpec:
    path: Path
    threshold: float
    title_weight: float
    terms: tuple[Term, ...]
    groups: tuple[str, ...]
    rules: tuple[Rule, ...]
    version: str


def load_rules(path: Path) -> RuleSpec:
    doc = read_yaml(path, error=RulesError)
    data = doc.data
    if not isinstance(data, dict):
        raise RulesError("expected a mapping with 'groups' and 'rules'", path=str(path), line=1)
    unknown = set(data) - {"threshold", "title_weight", "groups", "rules"}
    if unknown:
        key = sorted(unknown)[0]
        _fail(doc, [key], "unknown key; valid keys are threshold, title_weight, groups, rules")
    threshold = _number(doc, ["threshold"], data.get("threshold", 1.0))
    title_weight = _number(doc, ["title_weight"], data.get("title_weight", 1.0), positive=True)
    groups_raw = data.get("groups")
    if not isinstance(groups_raw, dict) or not groups_raw:
        _fail(doc, ["groups"], "expected a mapping of group names to terms per language")
    terms: list[Term] = []
    for group, by_lang in groups_raw.items():
        terms.extend(_group_terms(doc, str(group), by_lang))
    rules_raw = data.get("rules")
    if not isinstance(rules_raw, list) or not rules_raw:
        _fail(doc, ["rules"], "expected a list of rules")
    rules = tuple(_rule(doc, index, raw, set(groups_raw)) for index, raw in enumerate(rules_raw))
    names = [rule.name for rule in rules]
    for index, name in enumerate(names):
        if names.index(name) != index:
            _fail(doc, ["rules", index, "name"], f"rule name {name!r} is used twice")
    canonical = json.dumps(
        {"threshold": threshold, "title_weight": title_weight, "groups": groups_raw,
         "rules": rules_raw},
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return RuleSpec(
        path=path,
        threshold=threshold,
        title_weight=title_weight,
        terms=tuple(terms),
        groups=tuple(str(g) for g in groups_raw),
        rules=rules,
        version=hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12],
    )


def _group_terms(doc: YamlDocument, group: str, by_lang: Any) -> list[Term]:
    if not isinstance(by_lang, dict) or not by_lang:
        _fail(doc, ["groups", group], f"group {group!r} needs terms per language: fr, ar, en, any")
    terms = []
    for lang, raw_terms in by_lang.items():
        if lang not in LANGUAGES:
            _fail(doc, ["groups", group, lang], f"unknown language; use one of {LANGUAGES}")
        if not isinstance(raw_terms, list):
            _fail(doc, ["groups", group, lang], "expected a list of terms")
        for index, raw in enumerate(raw_terms):
            terms.append(_term(doc, ["groups", group, lang, index], group, raw))
    return terms


def _term(doc: YamlDocument, loc: list, group: str, raw: Any) -> Term:
    if not isinstance(raw, str | int) or isinstance(raw, bool):
        _fail(doc, loc, f"invalid term {raw!r}: a term is a word or phrase")
    text = str(raw).strip()
    prefix = text.endswith("*")
    body = text.rstrip("*").strip()
    if "*" in body:
        _fail(doc, loc, f"invalid term {text!r}: '*' is allowed only at the end (a prefix)")
    words = term_key(body)
    if not words:
        _fail(doc, loc, f"invalid term {text!r}: it has no letters or digits")
    if prefix and len(words) == 1 and len(words[0]) < 3:
        _fail(doc, loc, f"invalid term {text!r}: a prefix needs at least 3 letters")
    case_sensitive = bool(_ACRONYM.match(body.replace(" ", "")))
    if case_sensitive:
        words = tuple(w.upper() for w in words)
    return Term(text=text, group=group, words=words, prefix=prefix, case_sensitive=case_sensitive)


def _rule(doc: YamlDocument, index: int, raw: Any, groups: set) -> Rule:
    loc: list = ["rules", index]
    if not isinstance(raw, dict):
        _fail(doc, loc, "a rule is a mapping with name, all/any/none, weight")
    allowed = {"name", "topic", "all", "any", "none", "min_hits", "weight"}
    for key in raw:
        if key not in allowed:
            _fail(doc, [*loc, key], f"unknown key; valid keys are {', '.join(sorted(allowed))}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        _fail(doc, [*loc, "name"], "each rule needs a name")
    topic = raw.get("topic")
    if topic is not None and topic not in TOPICS:
        _fail(doc, [*loc, "topic"], f"unknown topic {topic!r}; use one of {', '.join(TOPICS)}")
    lists = {}
    for key in ("all", "any", "none"):
        value = raw.get(key, [])
        if not isinstance(value, list):
            _fail(doc, [*loc, key], "expected a list of group names")
        for position, group in enumerate(value):
            if group not in groups:
                _fail(doc, [*loc, key, position],
                      f"unknown group {group!r}; defined groups: {', '.join(sorted(groups))}")
        lists[key] = tuple(value)
    if not lists["all"] and not lists["any"]:
        _fail(doc, loc, f"rule {name!r} is empty: give it groups under 'all' or 'any'")
    weight = _number(doc, [*loc, "weight"], raw.get("weight", 1.0))
    if weight == 0:
        _fail(doc, [*loc, "weight"], "a weight of 0 makes the rule do nothing; remove it instead")
    min_hits = _number(doc, [*loc, "min_hits"], raw.get("min_hits", 1), positive=True)
    return Rule(name=name, topic=topic, all=lists["all"], any=lists["any"],
                none=lists["none"], min_hits=min_hits, weight=weight)


def _number(doc: YamlDocument, loc: list, value: Any, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(doc, loc, f"{value!r} is not a number")
    if positive and value <= 0:
        _fail(doc, loc, f"{value!r} must be a positive number")
    return float(value)


def _fail(doc: YamlDocument, loc: list, message: str) -> None:
    key = next((str(s) for s in reversed(loc) if isinstance(s, str)), None)
    raise RulesError(message, path=str(doc.path), line=doc.line_of(loc), key=key)
