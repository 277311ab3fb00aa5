"""The rule language: rules.yaml -> a validated `RuleSpec`. Pure apart from reading the file.

In: the path of rules.yaml. Out: `RuleSpec` (terms by group, rules, threshold, title weight and a
version hash); raises `RulesError` naming the file, line and key for an unknown key or group, a
bad weight, an empty rule, an invalid term or expression. The shape of the file (keys, types,
numbers, one rule's own consistency) is checked by the pydantic models of `fileformat`, as
monitor.yaml's is; what needs the whole file (the groups a rule names, the terms, unique rule
names) is checked here, after.

    threshold: 3            # score at or above which an item is relevant
    title_weight: 2         # a match in the title counts this many times (default 1)
    lead_words: 50          # lead(g) counts the title and this many first words of the body
    conditions:             # named expressions, used in `when:` by their name
      moroccan: "title(morocco) >= 1 or hits(morocco) >= 3"
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
from typing import TYPE_CHECKING, Any

from monitor.errors import RulesError
from monitor.rules.expression import Expr, ExpressionError, parse_expression
from monitor.rules.normalize import fold
from monitor.yamlfile import YamlDocument, read_yaml

if TYPE_CHECKING:
    from monitor.rules.fileformat import GroupEntry, RuleEntry

_ACRONYM = re.compile(r"^[A-Z0-9][A-Z0-9-]*[A-Z][A-Z0-9-]*$")
_ARABIC = re.compile("[\u0600-\u06ff]")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")  # a condition's name, as expressions read it
ARABIC_ARTICLE = "ال"
LANGUAGES = ("fr", "ar", "en", "any")  # a group's terms are given per language, or for any
TOPICS = ("ai", "cyber", "data-protection", "digital-policy")
FIELDS = ("title", "body")


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
    lead_words: int = 50    # the lead: the title and this many first words of the body


# --- The meaning: terms, the groups rules name --------------------------------------------------

def load_rules(path: Path) -> RuleSpec:
    # The file's models are pydantic's, loaded here, when a file is read: a compiled rule set
    # read back from the cache needs neither (a tenth of a second of a short command).
    from monitor.configmodel import validated
    from monitor.rules.fileformat import RulesFile

    doc = read_yaml(path, error=RulesError)
    if not isinstance(doc.data, dict):
        raise RulesError("expected a mapping with 'groups' and 'rules'", path=str(path), line=1)
    parsed = validated(RulesFile, doc.data, doc, error=RulesError)
    terms = [term for name, group in parsed.groups.items()
             for term in _group_terms(doc, name, group)]
    groups = set(parsed.groups)
    named = _conditions(doc, parsed.conditions, groups)
    rules = tuple(_rule(doc, index, entry, groups, named)
                  for index, entry in enumerate(parsed.rules))
    seen: set[str] = set()
    for index, rule in enumerate(rules):
        if rule.name in seen:
            _fail(doc, ["rules", index, "name"], f"rule name {rule.name!r} is used twice")
        seen.add(rule.name)
    return RuleSpec(
        path=path, threshold=parsed.threshold, title_weight=parsed.title_weight,
        terms=tuple(terms), groups=tuple(parsed.groups), rules=rules,
        version=rules_version(parsed.threshold, parsed.title_weight, doc.data["groups"],
                              doc.data["rules"], int(parsed.lead_words),
                              doc.data.get("conditions", {})),
        masks=frozenset(name for name, group in parsed.groups.items() if group.mask),
        lead_words=int(parsed.lead_words),
    )


def rules_version(threshold: float, title_weight: float, groups: Any, rules: Any,
                  lead_words: int = 50, conditions: Any = None) -> str:
    """Hash of the rules as parsed (comments, layout and key order do not count)."""
    canonical = json.dumps(
        {"threshold": threshold, "title_weight": title_weight, "groups": groups, "rules": rules,
         "lead_words": lead_words, "conditions": conditions or {}},
        sort_keys=True, ensure_ascii=False, default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:12]


def _group_terms(doc: YamlDocument, name: str, group: GroupEntry) -> list[Term]:
    terms: dict[tuple, Term] = {}
    for language, raw_terms in group.by_language():
        for index, raw in enumerate(raw_terms):
            term = parse_term(raw, name, lambda message, i=index, lg=language: _fail(
                doc, ["groups", name, lg, i], message))
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


def _conditions(doc: YamlDocument, conditions: dict[str, str],
                groups: set[str]) -> dict[str, Expr]:
    """The named conditions, each parsed with the ones written before it."""
    named: dict[str, Expr] = {}
    for name, text in conditions.items():
        loc = ["conditions", name]
        if not _NAME.match(name) or name in groups:
            _fail(doc, loc, f"a condition needs a name of its own (letters, digits, - and _), "
                            f"not a group's: {name!r}")
        try:
            expr = parse_expression(text, named)
        except ExpressionError as exc:
            _fail(doc, loc, f"invalid expression: {exc}")
        _known_groups(doc, loc, expr, groups)
        named[name] = expr
    return named


def _known_groups(doc: YamlDocument, loc: list, expr: Expr, groups: set[str]) -> None:
    for group in expr.groups():
        if group not in groups:
            _fail(doc, loc, f"unknown group {group!r}; defined groups: {', '.join(sorted(groups))}")


def _rule(doc: YamlDocument, index: int, entry: RuleEntry, groups: set[str],
          named: dict[str, Expr]) -> Rule:
    loc: list = ["rules", index]
    for key in ("all", "any", "none", "near"):
        for position, group in enumerate(getattr(entry, key)):
            if group not in groups:
                _fail(doc, [*loc, key, position],
                      f"unknown group {group!r}; defined groups: {', '.join(sorted(groups))}")
    when = None
    if entry.when is not None:
        try:
            when = parse_expression(entry.when, named)
        except ExpressionError as exc:
            _fail(doc, [*loc, "when"], f"invalid expression: {exc}")
        _known_groups(doc, [*loc, "when"], when, groups)
    return Rule(name=entry.name, topic=entry.topic, all=entry.all, any=entry.any,
                none=entry.none, min_hits=entry.min_hits, min_distinct=int(entry.min_distinct),
                field=entry.field, near=entry.near,
                window=int(entry.window) if entry.window is not None else None,
                when=when, when_text=entry.when, weight=entry.weight)


def _fail(doc: YamlDocument, loc: list, message: str) -> None:
    raise doc.error(loc, message, error=RulesError)
