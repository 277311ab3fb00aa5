"""Keyword rules: text folding, the rules.yaml language, matching with explanations. Pure.

In: rules.yaml and texts. Out: `Verdict`s. See `ruleset` for the file format, `expression` for
`when:` conditions, `normalize` for folding, `compile` for matching, `engine` for scoring,
`evaluate` for precision / recall on a labelled set and `suggest` for candidate terms.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from monitor.rules.cache import cached_compile
from monitor.rules.engine import Match, RuleOutcome, RuleSet, Verdict
from monitor.rules.ruleset import RuleSpec, load_rules

__all__ = ["Match", "RuleOutcome", "RuleSet", "RuleSpec", "Verdict", "load_ruleset",
           "split_document", "stored_parts"]


# Rule sets compiled in this process, by file, version and terms as written (their spelling
# and order, which the version leaves out, show in explanations): compiling ~2,000 terms takes
# about half a second, and a process loads the same rules many times (each command, reload).
_COMPILED: dict[tuple, RuleSet] = {}
_COMPILED_KEPT = 2  # about 16 MB each: the rules in force and the ones before an edit
_READ: dict[tuple[str, bytes], RuleSet] = {}  # the same, by file and bytes as read


def load_ruleset(path: Path) -> RuleSet:
    """Read, validate and compile rules.yaml; raises `RulesError`. The version is a hash of
    everything that decides a verdict, so rules of the same version and the same terms from the
    same file are compiled once per process; and the same file, as compiled by an earlier
    process, is read from the cache folder (`cache`) instead of compiled again."""
    try:
        data = path.read_bytes()
    except OSError:
        return _kept(RuleSet(load_rules(path)))  # load_rules says what is wrong with the file
    found = _READ.get((str(path), data))
    if found is None:
        found = cached_compile(path, data, lambda: _compiled(load_rules(path)))
        if found.spec.path != path:  # stored from a copy of the file elsewhere
            found.spec = dataclasses.replace(found.spec, path=path)
        found = _kept(found)
        _bounded(_READ, (str(path), data), found)
    return found


def _key(spec: RuleSpec) -> tuple:
    return (str(spec.path), spec.version, spec.groups, spec.terms)


def _compiled(spec: RuleSpec) -> RuleSet:
    return _COMPILED.get(_key(spec)) or RuleSet(spec)


def _kept(compiled: RuleSet) -> RuleSet:
    """The rule set of this process equal to `compiled` (`compiled`, the first time)."""
    return _COMPILED.get(_key(compiled.spec)) or _bounded(_COMPILED, _key(compiled.spec),
                                                          compiled)


def _bounded(kept: dict, key: object, value: RuleSet) -> RuleSet:
    while len(kept) >= _COMPILED_KEPT:
        kept.pop(next(iter(kept)))
    kept[key] = value
    return value


def split_document(text: str) -> tuple[str, str]:
    """(title, body) of a text file: the first line is a title when a blank line follows it."""
    head, sep, rest = text.lstrip("\ufeff").partition("\n")
    if sep and rest.startswith(("\n", "\r\n")) and 0 < len(head.strip()) <= 250:
        return head.strip(), rest.strip("\r\n")
    return "", text


def stored_parts(title: str, text: str, text_source: str) -> tuple[str, str]:
    """(title, body) the rules classify for a stored item: its title and its text, as the
    pipeline classified them, but no title for a seed corpus file (`text_source` ``corpus``),
    whose text begins with its own title line and is classified as one text."""
    return ("" if text_source == "corpus" else title), text
