"""Edit feeds.yaml: add feeds, remove one, disable or enable one, keeping its comments, order
and layout.

In: the path of feeds.yaml and `FeedSpec`s to add, or the URL of a listed feed (`find_listed`
finds it by URL or name). Out: `FeedsAdded` (the feeds written and those skipped as already
listed), or the edited feed's `FeedSpec`; the file rewritten atomically. Raises `ConfigError` (file,
line, what to do) and leaves the file untouched when it cannot be edited safely: unreadable, a
YAML syntax error, invalid before the edit, not a mapping with a ``feeds:`` list, not writable,
or invalid after the edit. Does file I/O.

ruamel.yaml's round-trip mode keeps comments, key order and scalar quoting; the indentation of
the existing entries is measured from the file and given back to the writer, so the untouched
part comes out byte for byte. New entries are written like the last existing one (flow
``tags: [a, b]`` or a block list) with keys in the order url, name, lang, interval, tags,
enabled, defaults left out. The result is written to a temporary file in the same folder,
validated with `settings.load_feeds`, given the old file's mode, then renamed over it.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from monitor.errors import ConfigError
from monitor.settings import FeedSpec, feed_url_key, load_feeds

_UNITS = (("d", 86400), ("h", 3600), ("m", 60))


@dataclass(frozen=True)
class FeedsAdded:
    added: tuple[FeedSpec, ...]
    already_listed: tuple[FeedSpec, ...]  # same URL as a listed feed, or earlier in the batch


def listed_feed(path: Path, url: str) -> FeedSpec | None:
    """The feed of feeds.yaml with the same URL as `url` (as `load_feeds` compares), if any."""
    key = feed_url_key(url)
    return next((feed for feed in load_feeds(path, empty_ok=True)
                 if feed_url_key(feed.url) == key), None)


def find_listed(path: Path, reference: str) -> FeedSpec:
    """The feed of feeds.yaml whose URL is `reference` (as `load_feeds` compares URLs), else
    whose name is it (case aside); a `ConfigError` saying what is listed when none or several
    match."""
    listed = load_feeds(path, empty_ok=True)
    key = feed_url_key(reference) if "://" in reference else None
    found = [feed for feed in listed if key is not None and feed_url_key(feed.url) == key]
    found = found or [feed for feed in listed if feed.name.casefold() == reference.casefold()]
    if len(found) == 1:
        return found[0]
    if found:
        urls = ", ".join(feed.url for feed in found)
        raise ConfigError(f"{len(found)} feeds are named {reference!r} ({urls}); give the URL",
                          path=str(path))
    raise ConfigError(f"no feed with the URL or name {reference!r}; `monitor feeds list` shows "
                      "the feeds", path=str(path))


def remove_feed(path: Path, url: str) -> None:
    """Take the feed with this URL out of feeds.yaml (its stored items stay)."""
    _edit_entry(path, url, lambda entries, index: entries.pop(index))


def set_enabled(path: Path, url: str, enabled: bool) -> None:
    """Mark the feed with this URL ``enabled: false``, or take the mark off (enabled is the
    default)."""

    def mark(entries: CommentedSeq, index: int) -> None:
        if enabled:
            entries[index].pop("enabled", None)
        else:
            entries[index]["enabled"] = False

    _edit_entry(path, url, mark)


def add_feeds(path: Path, feeds: Sequence[FeedSpec]) -> FeedsAdded:
    """Append the feeds not listed yet to feeds.yaml; the file is rewritten only if one is new."""
    # refuses an invalid file; an empty one is given its first feeds
    listed = {feed_url_key(feed.url) for feed in load_feeds(path, empty_ok=True)}
    added: list[FeedSpec] = []
    skipped: list[FeedSpec] = []
    for feed in feeds:
        key = feed_url_key(feed.url)
        (skipped if key in listed else added).append(feed)
        listed.add(key)
    if added:
        _append(path, added)
    return FeedsAdded(added=tuple(added), already_listed=tuple(skipped))


def format_duration(seconds: float) -> str:
    """The shortest duration text `settings.parse_duration` reads back as `seconds`."""
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _append(path: Path, feeds: Sequence[FeedSpec]) -> None:
    yaml, text, document = _load(path)
    out = io.StringIO()
    if document is None and text.strip():
        out.write(text if text.endswith("\n") else text + "\n")  # only comments: ruamel drops them
    document, entries = _feeds_list(document, path)
    _measure_indent(yaml, text, document, entries)
    flow_tags = _flow_tags(entries)
    for feed in feeds:
        entries.append(_entry(feed, flow_tags))
    yaml.dump(document, out)
    _replace_checked(path, out.getvalue())


def _edit_entry(path: Path, url: str, edit: Callable[[CommentedSeq, int], Any]) -> None:
    """Apply `edit` to the entries and the index of the one with this URL, then write."""
    load_feeds(path)  # refuses an invalid file
    yaml, text, document = _load(path)
    document, entries = _feeds_list(document, path)
    key = feed_url_key(url)
    index = next(i for i, entry in enumerate(entries) if feed_url_key(entry["url"]) == key)
    _measure_indent(yaml, text, document, entries)
    edit(entries, index)
    out = io.StringIO()
    yaml.dump(document, out)
    _replace_checked(path, out.getvalue())


def _load(path: Path) -> tuple[YAML, str, Any]:
    """The round-trip reader and writer, the file's text and its document."""
    text = path.read_text(encoding="utf-8")  # load_feeds just read it
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long existing line
    try:
        document = yaml.load(text)
    except MarkedYAMLError as exc:  # PyYAML accepted it; ruamel may still be stricter
        mark = exc.problem_mark or exc.context_mark
        raise ConfigError(f"cannot edit the file: {exc.problem}; fix it by hand first",
                          path=str(path), line=mark.line + 1 if mark else None) from None
    return yaml, text, document


def _feeds_list(document: Any, path: Path) -> tuple[CommentedMap, CommentedSeq]:
    if document is None:
        document = CommentedMap()
    if not isinstance(document, CommentedMap):
        raise ConfigError("cannot edit the file: the top level is not a mapping with a `feeds:` "
                          "list; fix it by hand first", path=str(path), line=1)
    entries = document.get("feeds")
    if entries is None:
        entries = document["feeds"] = CommentedSeq()
    if not isinstance(entries, CommentedSeq):
        raise ConfigError("cannot edit the file: `feeds` is not a list; fix it by hand first",
                          path=str(path), line=document.lc.key("feeds")[0] + 1, key="feeds")
    if not entries:
        entries.fa.set_block_style()  # `feeds: []` becomes a block list
    return document, entries


def _measure_indent(yaml: YAML, text: str, document: CommentedMap, entries: CommentedSeq) -> None:
    """Give the writer the file's own indentation of the feeds list (2/4/2 when it is empty)."""
    if not entries or "feeds" not in document.lc.data:
        yaml.indent(mapping=2, sequence=4, offset=2)  # the shipped config/feeds.yaml
        return
    parent_column = document.lc.key("feeds")[1]
    line, key_column = entries.lc.item(0)
    dash_column = len(text.splitlines()[line]) - len(text.splitlines()[line].lstrip(" "))
    sequence, offset = key_column - parent_column, dash_column - parent_column
    yaml.indent(mapping=max(sequence - offset, 2), sequence=sequence, offset=offset)


def _flow_tags(entries: CommentedSeq) -> bool:
    """True when the last entry with tags writes them [a, b] (also when none has tags)."""
    for entry in reversed(entries):
        tags = entry.get("tags") if isinstance(entry, CommentedMap) else None
        if isinstance(tags, CommentedSeq):
            return tags.fa.flow_style()
    return True


def _entry(feed: FeedSpec, flow_tags: bool) -> CommentedMap:
    entry = CommentedMap(url=feed.url, name=feed.name)
    if feed.lang:
        entry["lang"] = feed.lang
    if feed.interval is not None:
        entry["interval"] = format_duration(feed.interval)
    if feed.tags:
        tags = CommentedSeq(feed.tags)
        if flow_tags:
            tags.fa.set_flow_style()
        else:
            tags.fa.set_block_style()
        entry["tags"] = tags
    if not feed.enabled:
        entry["enabled"] = False
    return entry


def _replace_checked(path: Path, text: str) -> None:
    """Write `text` next to `path`, validate it as feeds.yaml, then rename it over `path`."""
    folder = path.parent
    if not os.access(path, os.W_OK) or not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot edit the file: no write permission on it or on {folder}; "
                          "run as its owner or fix the permissions", path=str(path))
    mode = path.stat().st_mode & 0o7777
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ConfigError(f"cannot edit the file: {exc.strerror} creating a temporary file in "
                          f"{folder}", path=str(path)) from exc
    staged = Path(temporary)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(staged, mode)
        try:
            load_feeds(staged)
        except ConfigError as exc:
            raise ConfigError(
                "the edit would make the file invalid, so nothing was written: "
                + str(exc).replace(str(staged), str(path)),
                path=str(path),
            ) from None
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
