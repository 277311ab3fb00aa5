"""Labelled texts, to measure the rules on: their JSON Lines files, and the list of opened ids.

In: a labelled file (JSON Lines), or records already read (the stored labels of `labels
export`'s shape); the opened list (one id a line). Out: `Labelled` items, each with the title
and body the rules are to classify; raises `LabelError` (a `RulesError`, exit 2) naming the
file, line and key of a bad line. Reads files; `add_opened` appends to the opened list.

A line: ``relevant`` (bool), and ``text`` or ``path`` (a file, relative to the labelled file);
``id``, ``lang``, ``topics``, ``confidence`` (``clear`` | ``borderline``) and ``split``
(``tuning`` | ``frozen``) when known. What is classified, as for a stored item:

- with ``text_source`` (`labels export`): ``title`` and ``text`` as stored (`stored_parts`);
- with a ``title`` string: that title and the text, unless the text begins with that title
  line and a blank line (the first labelled files carried it so): then the title once;
- else the text, its first line a title when a blank line follows (`split_document`).

The frozen split is the part nobody looked at while writing the rules; an id in the opened list
(``opened.txt`` beside the labelled file, by default) was looked at, and counts as tuning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from monitor.errors import RulesError
from monitor.rules import split_document, stored_parts

SPLITS = ("tuning", "frozen")
OPENED_FILE = "opened.txt"


class LabelError(RulesError):
    reason = "labels"


@dataclass(frozen=True)
class Labelled:
    source: str  # the labelled file, or "stored label"
    line: int | None  # its line in the file; None for a stored label
    id: str
    title: str  # what the rules classify
    body: str
    relevant: bool
    lang: str | None = None
    topics: tuple[str, ...] | None = None  # None: not given
    confidence: str | None = None
    split: str | None = None  # after the opened list: an opened frozen item is tuning

    @property
    def where(self) -> str:
        """Where the label comes from: ``file, line N``, or ``stored label``."""
        return self.source if self.line is None else f"{self.source}, line {self.line}"

    @property
    def headline(self) -> str:
        """The title, else the text's beginning: what a person recognises the item by."""
        return self.title or self.body


def read_labelled(path: Path) -> Iterator[Labelled]:
    """The labelled items of a JSON Lines file, in order."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LabelError(f"cannot read the labelled file ({exc.strerror})", path=str(path)) from exc
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise LabelError(f"not JSON: {exc.msg}", path=str(path), line=number) from exc
        yield labelled_record(data, source=str(path), line=number, folder=path.parent)


def labelled_record(data: object, *, source: str, line: int | None,
                    folder: Path | None = None) -> Labelled:
    """One labelled line (already parsed) as a `Labelled`; a ``path`` is read from `folder`."""
    def refuse(message: str, key: str | None = None) -> LabelError:
        return LabelError(message, path=source, line=line, key=key)

    if not isinstance(data, dict) or not isinstance(data.get("relevant"), bool):
        raise refuse('each line needs "relevant": true or false', "relevant")
    if isinstance(data.get("text"), str):
        text = data["text"]
    elif isinstance(data.get("path"), str) and folder is not None:
        try:
            text = (folder / data["path"]).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise refuse(f"cannot read {data['path']} ({exc.strerror})", "path") from exc
    else:
        raise refuse('each line needs "text" or "path"', "text")
    topics = data.get("topics")
    if topics is not None and not (isinstance(topics, list)
                                   and all(isinstance(t, str) for t in topics)):
        raise refuse('"topics" is a list of topic names', "topics")
    split = data.get("split")
    if split is not None and split not in SPLITS:
        raise refuse(f'"split" is one of {", ".join(SPLITS)}, not {split!r}', "split")
    title, body = _classified_parts(data.get("title"), text, data.get("text_source"))
    return Labelled(source=source, line=line,
                    id=str(data.get("id") or data.get("path") or f"line {line}"),
                    title=title, body=body, relevant=data["relevant"],
                    lang=data.get("lang") if isinstance(data.get("lang"), str) else None,
                    topics=tuple(topics) if topics is not None else None,
                    confidence=data.get("confidence") if isinstance(data.get("confidence"),
                                                                    str) else None,
                    split=split)


def _classified_parts(title: object, text: str, text_source: object) -> tuple[str, str]:
    if isinstance(text_source, str):  # a stored item (labels export): exactly as it was scored
        return stored_parts(title if isinstance(title, str) else "", text, text_source)
    if isinstance(title, str):
        head, rest = split_document(text)
        if head and head == title.strip():  # the text carries its title line: count it once
            return head, rest
        return title, text
    return split_document(text)


def read_opened(path: Path) -> set[str]:
    """The ids in the opened list (one a line; # starts a comment); empty when it is absent."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    except OSError as exc:
        raise LabelError(f"cannot read the opened list ({exc.strerror})", path=str(path)) from exc
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def read_labelled_files(paths: Iterable[Path], *, opened: Path,
                        split: str | None = None) -> Iterator[Labelled]:
    """The labelled items of the files in turn, those of a frozen split whose id is in the
    `opened` list moved to the tuning split; only the items of `split` when it is given."""
    ids = read_opened(opened)
    for path in paths:
        for item in read_labelled(path):
            if item.split == "frozen" and item.id in ids:
                item = replace(item, split="tuning")
            if split is None or item.split == split:
                yield item


def add_opened(path: Path, ids: Iterable[str]) -> list[str]:
    """Append the ids not yet in the opened list to it (creating it); returns those added."""
    known = read_opened(path)
    added = [i for i in dict.fromkeys(ids) if i not in known]
    if added:
        try:
            ends_a_line = not path.exists() or path.read_bytes().endswith(b"\n") \
                or path.stat().st_size == 0
            with path.open("a", encoding="utf-8") as out:
                out.write(("" if ends_a_line else "\n") + "".join(f"{i}\n" for i in added))
        except OSError as exc:
            raise LabelError(f"cannot write the opened list ({exc.strerror})",
                             path=str(path)) from exc
    return added
