"""Check a configuration file's data with a pydantic model and explain the first problem.

In: the data of a `YamlDocument` and the model of the file. Out: the validated model; raises
`ConfigError` (or the subclass asked for) naming the file, the line and the key of the first
value the model refuses, with a message saying what would be valid. `first_problem` gives the
same explanation without a file (for options and imported entries). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from monitor.errors import ConfigError
from monitor.yamlfile import YamlDocument, innermost_key, quoted

Model = TypeVar("Model", bound=BaseModel)


class ConfigModel(BaseModel):
    """A mapping of a configuration file: unknown keys are refused, values are read-only, numbers
    are finite (``.nan`` and ``.inf`` are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


@dataclass(frozen=True)
class Problem:
    """The first thing a model refused: where (keys and list indexes) and what to do."""

    loc: tuple[str | int, ...]
    message: str

    @property
    def key(self) -> str | None:
        return innermost_key(self.loc)


def validated(model: type[Model], data: Any, doc: YamlDocument, *,
              error: type[ConfigError] = ConfigError) -> Model:
    """`data` (read from `doc`) checked by `model`; the first problem is an `error` naming the
    file, the line and the key."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problem = first_problem(exc, model)
        raise doc.error(problem.loc, problem.message, error=error) from None


def first_problem(exc: ValidationError, model: type[BaseModel]) -> Problem:
    """The first error of `exc` as people read it: the path of keys in the file (pydantic's own
    steps left out) and a message saying what would be valid."""
    first = exc.errors()[0]
    # "function-after[...]" steps come from validators, "[key]" from a refused mapping key
    loc = tuple(step for step in first["loc"]
                if not str(step).startswith("function-") and step != "[key]")
    return Problem(loc, _explain(first, model))


def _explain(error: Mapping[str, Any], model: type[BaseModel]) -> str:
    """pydantic's error in our words: what was expected and what was found (its own wording,
    "Input should be a valid tuple", names Python types, not what the file holds)."""
    kind, ctx = error["type"], error.get("ctx") or {}
    given = quoted(error.get("input"))
    if kind == "extra_forbidden":
        return f"unknown key; valid keys here are: {', '.join(_keys_at(model, error['loc']))}"
    if kind == "missing":
        return "this required key is missing"
    if kind in ("value_error", "assertion_error"):  # our validators' own messages
        return str(ctx.get("error") or error["msg"])
    if kind in _EXPECTED:
        return f"expected {_EXPECTED[kind]}, found {given}"
    bound = next((name for name in _BOUNDS if name in ctx), None)
    if bound is not None:
        return f"{given} is out of range: use a value {_BOUNDS[bound]} {ctx[bound]}"
    if kind == "string_too_short":
        return "this value must not be empty"
    return f"{given} is not valid here"


_EXPECTED = {  # pydantic's type errors -> what the file should hold there
    "tuple_type": "a list", "list_type": "a list", "set_type": "a list",
    "dict_type": "a mapping of keys", "model_type": "a mapping of keys",
    "model_attributes_type": "a mapping of keys",
    "string_type": "text",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "int_type": "a whole number", "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number", "float_parsing": "a number",
    "finite_number": "a finite number (not .nan or .inf)",
}
_BOUNDS = {"ge": "of at least", "gt": "above", "le": "of at most", "lt": "below"}


def _keys_at(model: type[BaseModel], loc: tuple) -> list[str]:
    """The keys the model takes at `loc` (a mapping's own names and indexes are skipped)."""
    current: Any = model
    for step in loc[:-1]:
        if isinstance(step, int):
            continue
        field = current.model_fields.get(step) if hasattr(current, "model_fields") else None
        if field is None:
            continue  # a name of ours (a group's), not a field: the model is the value's
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        current = next((a for a in inner if hasattr(a, "model_fields")), current)
    return sorted(getattr(current, "model_fields", {}))
