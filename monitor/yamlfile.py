"""Read a YAML configuration file and keep where each key stands in it.

In: a path. Out: a `YamlDocument` (the plain data plus a locator from a key path to its line);
raises `ConfigError` naming the file and line for unreadable files, YAML syntax errors and
duplicate keys (which YAML itself would silently let the last one win). Pure apart from reading
the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

# libyaml's parser when PyYAML has it (about 20x faster on a feed list of thousands of entries);
# its nodes carry the same line marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class YamlDocument:
    path: Path
    data: Any
    root: yaml.Node | None

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
        # The data is built from the nodes just composed: the text is parsed once.
        data = yaml.constructor.SafeConstructor().construct_document(root) if root else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(
            f"YAML syntax error: {problem}; fix the indentation or quoting there",
            path=str(path),
            line=mark.line + 1 if mark else None,
        ) from exc
    if root is not None:
        _refuse_duplicate_keys(root, path, error)
    return YamlDocument(path=path, data=data, root=root)


def _refuse_duplicate_keys(node: yaml.Node, path: Path, error: type[ConfigError]) -> None:
    if isinstance(node, yaml.MappingNode):
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
            _refuse_duplicate_keys(value_node, path, error)
    elif isinstance(node, yaml.SequenceNode):
        for child in node.value:
            _refuse_duplicate_keys(child, path, error)
