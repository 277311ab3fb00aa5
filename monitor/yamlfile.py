"""Read a YAML configuration file and keep where each key stands in it.

In: a path. Out: a `YamlDocument` (the plain data plus a locator from a key path to its line);
raises `ConfigError` (or the subclass asked for) naming the file, the line and the key for
unreadable files, YAML syntax errors, aliases that multiply the file or make a value contain
itself, and duplicate keys (which YAML itself would silently let the last one win); in time
linear in the file. Checking the data against a model of the file is `configmodel`'s (pydantic,
which a command that only reads a path from the file does not import). Pure apart from reading
the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

# libyaml's parser when PyYAML has it (about 20x faster on a feed list of thousands of entries);
# its nodes carry the same line marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Values that aliases may add to a file (a feed list of thousands of entries is some 100,000
# values written out; anchors shared by many of them add a few each).
MAX_REPEATED = 100_000


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    root: yaml.Node | None

    def error(self, loc: Sequence[str | int], message: str, *,
              error: type[ConfigError] = ConfigError) -> ConfigError:
        """`error` naming this file, the line of `loc` and its innermost key."""
        return error(message, path=str(self.path), line=self.line_of(loc), key=innermost_key(loc))

    def line_of(self, loc: Sequence[str | int]) -> int | None:
        """1-based line of the deepest node along `loc` (keys and list indexes)."""
        node = self.root
        line = node.start_mark.line + 1 if node is not None else None
        for step in loc:
            if isinstance(node, yaml.MappingNode):
                found = None
                for key_node, value_node in node.value:
                    if key_node.value == step:
                        found = (key_node, value_node)
                        break
                if found is None:
                    return line
                line = found[0].start_mark.line + 1
                node = found[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
                if step >= len(node.value):
                    return line
                node = node.value[step]
                line = node.start_mark.line + 1
            else:
                return line
        return line


def read_yaml(path: Path, *, error: type[ConfigError] = ConfigError) -> YamlDocument:
    """Parse `path`; every failure is an `error` naming the file and the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(
            "file not found; create it or point the configuration at it", path=str(path)
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"cannot read the file ({exc})", path=str(path)) from exc
    try:
        root = yaml.compose(text, Loader=_LOADER)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, path, error) from exc
    if root is None:
        return YamlDocument(path=path, data=None, root=None)
    if "&" in text:  # no anchor, no alias: nothing to multiply
        _refuse_alias_bombs(root, path, error)
    try:
        # The data is built from the nodes just composed: the text is parsed once.
        data = yaml.constructor.SafeConstructor().construct_document(root)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc, path, error) from exc
    _refuse_duplicate_keys(root, path, error)
    return YamlDocument(path=path, data=data, root=root)


def _syntax_error(exc: yaml.YAMLError, path: Path, error: type[ConfigError]) -> ConfigError:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    return error(f"YAML syntax error: {problem}; fix the indentation or quoting there",
                 path=str(path), line=mark.line + 1 if mark else None)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def _refuse_alias_bombs(root: yaml.Node, path: Path, error: type[ConfigError]) -> None:
    """Refuse a document that aliases (``*name``) make larger than it is written by more than
    `MAX_REPEATED` values, or in which a value contains itself. An alias is the anchored node
    itself, so nested aliases multiply: twenty lines can stand for a million values that every
    later step (building the data, checking it, quoting it) would walk. Each node is counted
    once, without recursion: the time is linear in the file."""
    sizes: dict[int, int] = {}  # id(node) -> values it stands for, aliases expanded
    shared: dict[int, yaml.Node] = {}  # nodes met more than once: anchored and aliased
    stack: list[tuple[yaml.Node, list[yaml.Node]]] = [(root, _children(root))]
    open_nodes = {id(root)}
    while stack:
        node, children = stack[-1]
        if not children:
            stack.pop()
            open_nodes.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(child)] for child in _children(node))
            continue
        child = children.pop()
        if id(child) in open_nodes:
            raise error("this value contains itself through an alias (*name); write it out",
                        path=str(path), line=child.start_mark.line + 1)
        if id(child) in sizes:
            shared[id(child)] = child
            continue
        open_nodes.add(id(child))
        stack.append((child, _children(child)))
    if sizes[id(root)] - len(sizes) > MAX_REPEATED:
        biggest = max(shared.values(), key=lambda node: sizes[id(node)])
        raise error(f"aliases (*name) repeat the value anchored here into more than "
                    f"{MAX_REPEATED} values; write it out or use fewer nested aliases",
                    path=str(path), line=biggest.start_mark.line + 1)


def _refuse_duplicate_keys(root: yaml.Node, path: Path, error: type[ConfigError]) -> None:
    """The first duplicate key in the order of the file; a node aliased many times is looked
    at once (a walk of every alias would take time exponential in their nesting)."""
    looked_at: set[int] = set()
    stack: list[Iterator[yaml.Node]] = [iter([root])]
    while stack:
        node = next(stack[-1], None)
        if node is None:
            stack.pop()
        elif id(node) not in looked_at:
            looked_at.add(id(node))
            if isinstance(node, yaml.MappingNode):
                stack.append(_values_with_unique_keys(node, path, error))
            elif isinstance(node, yaml.SequenceNode):
                stack.append(iter(node.value))


def _values_with_unique_keys(node: yaml.MappingNode, path: Path,
                             error: type[ConfigError]) -> Iterator[yaml.Node]:
    seen: dict[Any, int] = {}
    for key_node, value_node in node.value:
        key = getattr(key_node, "value", None)
        if isinstance(key, str) and key in seen:
            raise error(
                f"duplicate key (first given on line {seen[key]}); keep only one",
                path=str(path),
                line=key_node.start_mark.line + 1,
                key=key,
            )
        if isinstance(key, str):
            seen[key] = key_node.start_mark.line + 1
        yield value_node


def quoted(value: Any) -> str:
    """A value of the file as a message quotes it: cut short (a number of a thousand digits is
    not read), ``.nan`` and ``.inf`` as YAML writes them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("nan", ".nan").replace("inf", ".inf")
    if value is None:
        return "nothing"
    if isinstance(value, Mapping | list | tuple):  # not spelt out: it may be a large one
        return "a mapping" if isinstance(value, Mapping) else "a list"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def innermost_key(loc: Sequence[str | int]) -> str | None:
    """The innermost key named along `loc` (a list index is not a key)."""
    return next((str(s) for s in reversed(loc) if isinstance(s, str)), None)
