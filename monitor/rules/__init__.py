"""Keyword rules: text folding, the rules.yaml language, matching with explanations. Pure.

In: rules.yaml and texts. Out: `Verdict`s. See `ruleset` for the file format, `expression` for
`when:` conditions, `normalize` for folding, `compile` for matching, `engine` for scoring,
`evaluate` for precision / recall on a labelled set and `suggest` for candidate terms.
"""

from __future__ import annotations

from pathlib import Path

from monitor.rules.engine import Match, RuleOutcome, RuleSet, Verdict
from monitor.rules.ruleset import RuleSpec, load_rules

__all__ = ["Match", "RuleOutcome", "RuleSet", "RuleSpec", "Verdict", "load_ruleset",
           "split_document", "stored_parts"]


# Rule sets compiled in this process, by file, version and terms as written (their spelling
# and order, which the version leaves out, show in explanations): compiling ~2,000 terms takes
# about half a second, and a process loads the same rules many times (each command, reload).
_COMPILED: dict[tuple, RuleSet] = {}
_COMPILED_KEPT = 2  # about 16 MB each: the rules in force and the ones before an edit


def load_ruleset(path: Path) -> RuleSet:
    """Read, validate and compile rules.yaml; raises `RulesError`. The version is a hash of
    everything that decides a verdict, so rules of the same version and the same terms from the
    same file are compiled once per process."""
    spec = load_rules(path)
    key = (str(spec.path), spec.version, spec.groups, spec.terms)
    compiled = _COMPILED.get(key)
    if compiled is None:
        compiled = RuleSet(spec)
        while len(_COMPILED) >= _COMPILED_KEPT:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = compiled
    return compiled


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
