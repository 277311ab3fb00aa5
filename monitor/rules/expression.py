"""The `when:` expressions of rules.yaml: text -> `Expr`, and `Expr` + counts -> bool. Pure.

Grammar (no Python eval; groups are the names defined under ``groups:``):

    expr    := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | "(" expr ")" | test
    test    := GROUP                          # the group has at least one match
             | count (">=" | ">" | "<=" | "<" | "==" | "!=") NUMBER
             | "near(" GROUP "," GROUP "," NUMBER ")"   # matches at most N words apart
    count   := "hits(" GROUP ")"     # matches, a title match counting title_weight
             | "distinct(" GROUP ")" # different terms matched
             | "title(" GROUP ")" | "body(" GROUP ")"   # matches in that field
             | "density(" GROUP ")"  # hits per 1000 words of the text
             | "lead(" GROUP ")"     # matches in the title and the first lead_words of the body
             | "words"               # words in the title and body

Example: ``morocco and (hits(ai) >= 3 or title(ai) >= 1) and not sport``. At most
`MAX_NESTING` parentheses and ``not``s inside one another. A name may also stand for a named
condition (rules.yaml's ``conditions:``), parsed once and used as if written in its place.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

_TOKEN = re.compile(r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<op>>=|<=|==|!=|>|<)|(?P<punct>[(),])"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_-]*))")
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt,
    "==": operator.eq, "!=": operator.ne,
}
COUNTS = ("hits", "distinct", "title", "body", "density", "lead")
# Parentheses and `not`s inside one another: far more than people write, and well within what
# the recursive parser and the compiled source (`Expr.source`) can nest.
MAX_NESTING = 50
_KEYWORDS = {"and", "or", "not", "near", "words", *COUNTS}


class ExpressionError(ValueError):
    """The expression does not follow the grammar; the message says where."""


class Counts(Protocol):
    def count(self, kind: str, group: str) -> float: ...
    def near(self, first: str, second: str, window: int) -> bool: ...
    def words(self) -> int: ...


class Expr:
    def evaluate(self, counts: Counts) -> bool:
        raise NotImplementedError

    def groups(self) -> list[str]:
        """Every group the expression names."""
        raise NotImplementedError

    def required(self) -> frozenset[str]:
        """Groups without a match of which the expression cannot be true (a quick pre-check)."""
        return frozenset()

    def source(self, only: str | None) -> str:
        """The expression as Python source over the counts of `count_source` (for speed: the
        rules of a rule set are compiled into one function; see `engine`)."""
        raise NotImplementedError


def count_source(kind: str, group: str, only: str | None) -> str:
    """Python source of one count, over `n` (matches per group: `n[group]` in the body,
    `n["^" + group]` in the title), `w` (the title weight) and `c` (the counts object, for the
    rarer counts)."""
    g = repr(group)
    title, body = f"n.get({'^' + group!r}, 0)", f"n.get({g}, 0)"
    if kind == "hits":
        parts = ([f"{title} * w"] if only != "body" else []) + ([body] if only != "title" else [])
        return "(" + " + ".join(parts) + ")"
    if kind in ("title", "body"):
        return (title if kind == "title" else body) if only in (None, kind) else "0"
    if kind in ("distinct", "lead"):
        return f"c.{kind}({g}, {only!r})"
    if kind == "density":
        return f"({count_source('hits', group, only)} * 1000.0 / max(1, c.words()))"
    raise ValueError(kind)


@dataclass(frozen=True)
class _Bool(Expr):
    kind: str  # "and" | "or"
    parts: tuple[Expr, ...]

    def evaluate(self, counts: Counts) -> bool:
        if self.kind == "and":
            return all(part.evaluate(counts) for part in self.parts)
        return any(part.evaluate(counts) for part in self.parts)

    def groups(self) -> list[str]:
        return [g for part in self.parts for g in part.groups()]

    def required(self) -> frozenset[str]:
        sets = [part.required() for part in self.parts]
        if self.kind == "and":
            return frozenset().union(*sets)
        return frozenset.intersection(*sets)

    def source(self, only: str | None) -> str:
        return "(" + f" {self.kind} ".join(part.source(only) for part in self.parts) + ")"


@dataclass(frozen=True)
class _Not(Expr):
    part: Expr

    def evaluate(self, counts: Counts) -> bool:
        return not self.part.evaluate(counts)

    def groups(self) -> list[str]:
        return self.part.groups()

    def source(self, only: str | None) -> str:
        return f"(not {self.part.source(only)})"


@dataclass(frozen=True)
class _Compare(Expr):
    kind: str
    group: str
    op: str
    number: float

    def evaluate(self, counts: Counts) -> bool:
        if self.kind == "words":
            return _OPS[self.op](counts.words(), self.number)
        return _OPS[self.op](counts.count(self.kind, self.group), self.number)

    def groups(self) -> list[str]:
        return [self.group] if self.group else []

    def required(self) -> frozenset[str]:
        # a count compared so that zero fails (hits(g) >= 1, title(g) > 0) needs a match of g
        if self.group and not _OPS[self.op](0.0, self.number):
            return frozenset([self.group])
        return frozenset()

    def source(self, only: str | None) -> str:
        if self.kind == "words":  # compared to a number: counting may stop past it
            return f"(c.words({self.number!r}) {self.op} {self.number!r})"
        value = count_source(self.kind, self.group, only)
        return f"({value} {self.op} {self.number!r})"


@dataclass(frozen=True)
class _Near(Expr):
    first: str
    second: str
    window: int

    def evaluate(self, counts: Counts) -> bool:
        return counts.near(self.first, self.second, self.window)

    def groups(self) -> list[str]:
        return [self.first, self.second]

    def required(self) -> frozenset[str]:
        return frozenset([self.first, self.second])

    def source(self, only: str | None) -> str:
        return f"c.near({self.first!r}, {self.second!r}, {self.window!r}, {only!r})"


def parse_expression(text: str, named: Mapping[str, Expr] | None = None) -> Expr:
    """Parse `text`; a name of `named` stands for that expression. Raises `ExpressionError`
    naming the position of the problem."""
    return _Parser(text, named or {}).parse()


class _Parser:
    def __init__(self, text: str, named: Mapping[str, Expr]) -> None:
        self.text, self.named = text, named
        self.tokens: list[tuple[str, str, int]] = []
        pos = 0
        while pos < len(text):
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                if text[pos:].strip() == "":
                    break
                raise ExpressionError(f"unexpected {text[pos:].strip()[:20]!r} at column {pos + 1}")
            kind = match.lastgroup or ""
            self.tokens.append((kind, match.group(kind), match.start(kind) + 1))
            pos = match.end()
        self.index = 0
        self.depth = 0  # parentheses and `not`s open at this point

    def parse(self) -> Expr:
        expr = self._or()
        if self.index < len(self.tokens):
            _, value, column = self.tokens[self.index]
            raise ExpressionError(f"unexpected {value!r} at column {column}")
        return expr

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def _take(self, value: str | None = None, kind: str | None = None) -> str:
        token = self._peek()
        if token is None:
            raise ExpressionError(f"expression ends early; expected {value or kind}")
        if (value is not None and token[1] != value) or (kind is not None and token[0] != kind):
            raise ExpressionError(f"expected {value or kind} at column {token[2]}, "
                                  f"found {token[1]!r}")
        self.index += 1
        return token[1]

    def _or(self) -> Expr:
        parts = [self._and()]
        while self._peek() and self._peek()[1] == "or":
            self.index += 1
            parts.append(self._and())
        return parts[0] if len(parts) == 1 else _Bool("or", tuple(parts))

    def _and(self) -> Expr:
        parts = [self._not()]
        while self._peek() and self._peek()[1] == "and":
            self.index += 1
            parts.append(self._not())
        return parts[0] if len(parts) == 1 else _Bool("and", tuple(parts))

    def _not(self) -> Expr:
        token = self._peek()
        if token is None:
            raise ExpressionError("expression ends early; expected a group or a test")
        if token[1] not in ("not", "("):
            return self._test()
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ExpressionError(f"the expression nests too deep at column {token[2]}: more "
                                  f"than {MAX_NESTING} parentheses or 'not's inside one another")
        self.index += 1
        if token[1] == "not":
            expr: Expr = _Not(self._not())
        else:
            expr = self._or()
            self._take(")")
        self.depth -= 1
        return expr

    def _group(self) -> str:
        token = self._peek()
        name = self._take(kind="name")
        if name in _KEYWORDS:
            raise ExpressionError(f"expected a group name at column {token[2]}, found {name!r}")
        return name

    def _test(self) -> Expr:
        token = self._peek()
        assert token is not None
        if token[1] == "near":
            self.index += 1
            self._take("(")
            first = self._group()
            self._take(",")
            second = self._group()
            self._take(",")
            window = float(self._take(kind="num"))
            self._take(")")
            return _Near(first, second, int(window))
        if token[1] == "words":
            self.index += 1
            op = self._take(kind="op")
            return _Compare("words", "", op, float(self._take(kind="num")))
        if token[1] in COUNTS:
            self.index += 1
            self._take("(")
            group = self._group()
            self._take(")")
            op = self._take(kind="op")
            return _Compare(token[1], group, op, float(self._take(kind="num")))
        group = self._group()
        if group in self.named:
            return self.named[group]
        return _Compare("hits", group, ">", 0.0)
