"""The shape of rules.yaml, as pydantic models: keys, types, numbers, one rule's own
consistency. Pure.

In: the parsed YAML data. Out: a `RulesFile` (its `GroupEntry`s and `RuleEntry`s as written),
or the errors `yamlfile.validated` turns into file, line and key. What needs the whole file
(the groups a rule names, the terms, expressions, unique rule names) is `ruleset`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from monitor.configmodel import ConfigModel
from monitor.rules.ruleset import FIELDS, LANGUAGES, TOPICS
from monitor.yamlfile import quoted

MAX_NUMBER = 1e9  # thresholds, weights and counts past it are typos (and .inf is no number)


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{value!r} is not a number")
    if abs(value) > MAX_NUMBER or value != value:  # huge, .inf or .nan (which equals nothing)
        raise ValueError(f"{quoted(value)} is not a usable number; write e.g. 3 or 2.5")
    return float(value)


def _positive_number(value: Any) -> float:
    if _number(value) <= 0:
        raise ValueError(f"{value!r} must be a positive number")
    return float(value)


def _one_of(value: Any, allowed: Sequence[str], what: str) -> Any:
    """`value` (None: not given) if it is one of `allowed`, else the error naming them."""
    if value is not None and value not in allowed:
        raise ValueError(f"unknown {what} {value!r}; use one of {', '.join(allowed)}")
    return value


def _whole(value: float, says: str) -> float:
    if value != int(value):
        raise ValueError(says)
    return value


def _list_of(what: str) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, list | tuple):
            raise ValueError(f"expected a list of {what}")
        return value
    return BeforeValidator(check)


Number = Annotated[float, BeforeValidator(_number)]  # 3 or 2.5; not "3", not true
PositiveNumber = Annotated[float, BeforeValidator(_positive_number)]
GroupNames = Annotated[tuple[str, ...], _list_of("group names")]
TermList = Annotated[tuple[Any, ...], _list_of("terms")]  # each one read by `parse_term`


class GroupEntry(ConfigModel):
    """A group: terms per language, and whether its matches hide the others' inside them."""

    mask: bool | None = None
    fr: TermList = ()
    ar: TermList = ()
    en: TermList = ()
    any: TermList = ()
    _languages: tuple[str, ...] = PrivateAttr(())  # as written: the first spelling of a
    # term given in two languages is the one shown

    @field_validator("mask", mode="before")
    @classmethod
    def _mask(cls, value: Any) -> Any:
        if value is not None and value is not True:
            raise ValueError("mask is 'true' or absent")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _some_language(cls, data: Any, handler: Any) -> GroupEntry:
        if isinstance(data, GroupEntry):
            return data
        needs = f"a group needs terms per language: {', '.join(LANGUAGES)}"
        if not isinstance(data, dict):
            raise ValueError(needs)
        group = handler(data)  # unknown keys and bad values first
        group._languages = tuple(key for key in data if key in LANGUAGES)
        if not group._languages:
            raise ValueError(needs)
        return group

    def by_language(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(language, getattr(self, language)) for language in self._languages]


class RuleEntry(ConfigModel):
    name: str
    topic: str | None = None
    all: GroupNames = ()
    any: GroupNames = ()
    none: GroupNames = ()
    min_hits: PositiveNumber = 1.0
    min_distinct: PositiveNumber = 1.0
    field: str | None = None
    window: PositiveNumber | None = None  # before `near`, which is checked with it
    near: GroupNames = Field((), validate_default=True)
    when: str | None = None
    weight: Number = 1.0

    @model_validator(mode="before")
    @classmethod
    def _mapping(cls, data: Any) -> Any:
        if not isinstance(data, dict | RuleEntry):
            raise ValueError("a rule is a mapping with name, all/any/none or when, weight")
        return data

    @field_validator("name", mode="before")
    @classmethod
    def _name(cls, value: Any) -> Any:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("each rule needs a name")
        return value

    @field_validator("topic", mode="before")
    @classmethod
    def _topic(cls, value: Any) -> Any:
        return _one_of(value, TOPICS, "topic")

    @field_validator("min_distinct")
    @classmethod
    def _whole_terms(cls, value: float) -> float:
        return _whole(value, "min_distinct is a whole number of different terms")

    @field_validator("field", mode="before")
    @classmethod
    def _field(cls, value: Any) -> Any:
        return _one_of(value, FIELDS, "field")

    @field_validator("window")
    @classmethod
    def _whole_words(cls, value: float | None) -> float | None:
        return None if value is None else _whole(value, "window is a whole number of words")

    @field_validator("near")
    @classmethod
    def _near(cls, value: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        window = info.data.get("window")
        if value or window is not None:
            if len(value) != 2:
                raise ValueError("near names two groups, e.g. near: [morocco, ai]")
            if window is None:
                raise ValueError("near needs a window: the most words between the two")
        return value

    @field_validator("when", mode="before")
    @classmethod
    def _when(cls, value: Any) -> Any:
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError("expected an expression, e.g. \"morocco and hits(ai) >= 2\"")
        return value

    @field_validator("weight")
    @classmethod
    def _weight(cls, value: float) -> float:
        if value == 0:
            raise ValueError("a weight of 0 makes the rule do nothing; remove it instead")
        return value

    @model_validator(mode="after")
    def _not_empty(self) -> RuleEntry:
        if not self.all and not self.any and self.when is None:
            raise ValueError(f"rule {self.name!r} is empty: give it groups under 'all' or "
                             "'any', or 'when'")
        return self


def _mapping_of(what: str, kind: type) -> Any:
    def check(value: Any) -> Any:
        if not isinstance(value, kind) or not value:
            raise ValueError(f"expected {what}")
        return value
    return BeforeValidator(check)


class RulesFile(ConfigModel):
    threshold: Number = 1.0
    title_weight: PositiveNumber = 1.0
    lead_words: PositiveNumber = 50.0
    conditions: Annotated[dict[Annotated[str, BeforeValidator(str)], str],
                          _mapping_of("a mapping of names to expressions", dict)] = {}
    groups: Annotated[dict[Annotated[str, BeforeValidator(str)], GroupEntry],
                      _mapping_of("a mapping of group names to terms per language", dict)]
    rules: Annotated[tuple[RuleEntry, ...], _mapping_of("a list of rules", list | tuple)]

    @field_validator("lead_words")
    @classmethod
    def _whole_lead(cls, value: float) -> float:
        return _whole(value, "lead_words is a whole number of words")
