"""The rules as ONE generated Python function: counts per group in, fired per rule out. Pure.

In: the parsed `Rule`s. Out: ``decide(n, g, w, c) -> tuple[bool, ...]`` (n: weighted hits and
distinct terms per group, g: the groups with a match, w: the title weight, c: the counts, for
`near` and expressions), made of group names and numbers only: nothing of the file is run as
code. `engine` explains a verdict rule by rule; tests check that both agree everywhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from monitor.rules.expression import count_source
from monitor.rules.ruleset import Rule


def compile_rules(rules: tuple[Rule, ...]) -> Callable[..., tuple[bool, ...]]:
    """All the rules as ONE Python function (n, g, w, c) -> fired per rule, generated from the
    parsed rules (group names and numbers only: nothing of the file is run as code). `g` is
    the set of groups with a match: a rule is tested only when the groups it cannot do without
    are there. It decides exactly as `_unmet` explains, much faster (tests compare the two)."""
    needs = [set(rule.all) | (rule.when.required() if rule.when else set()) for rule in rules]
    lines = ["def decide(n, g, w, c):"]
    if rules:
        lines.append("    " + " = ".join(f"r{i}" for i in range(len(rules))) + " = False")
    lines += _nested([(i, needs[i]) for i in range(len(rules))], rules, "    ")
    lines.append("    return (" + "".join(f"r{i}, " for i in range(len(rules))) + ")")
    namespace: dict = {"__builtins__": {"bool": bool, "max": max}}
    exec(compile("\n".join(lines), "<rules>", "exec"), namespace)  # noqa: S102
    return namespace["decide"]


def _nested(todo: list[tuple[int, set[str]]], rules: tuple[Rule, ...], indent: str) -> list[str]:
    """Source lines setting r<index> for the rules of `todo` (index, groups still to test),
    the group that most of them need tested once for all of them (`if 'morocco' in g:`)."""
    lines = [f"{indent}r{i} = bool({rule_source(rules[i])})" for i, left in todo if not left]
    todo = [(i, left) for i, left in todo if left]
    while todo:
        counts = Counter(group for _, left in todo for group in left)
        group = min(counts, key=lambda name: (-counts[name], name))
        lines.append(f"{indent}if {group!r} in g:")
        lines += _nested([(i, left - {group}) for i, left in todo if group in left], rules,
                         indent + "    ")
        todo = [(i, left) for i, left in todo if group not in left]
    return lines


def rule_source(rule: Rule) -> str:
    """One rule as a Python condition (see `compile_rules`)."""
    only = rule.field

    def meets(group: str) -> str:
        src = f"{count_source('hits', group, only)} >= {rule.min_hits!r}"
        if rule.min_distinct > 1:
            src += f" and {count_source('distinct', group, only)} >= {rule.min_distinct!r}"
        return f"({src})"

    parts = [meets(g) for g in rule.all]
    if rule.any:
        parts.append("(" + " or ".join(meets(g) for g in rule.any) + ")")
    parts += [f"({count_source('hits', g, only)} == 0)" for g in rule.none]
    if rule.near and rule.window:
        parts.append(f"c.near({rule.near[0]!r}, {rule.near[1]!r}, {rule.window!r}, {only!r})")
    if rule.when is not None:
        parts.append(rule.when.source(only))
    return " and ".join(parts) if parts else "True"
