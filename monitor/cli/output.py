"""One way to print listings: JSON Lines with --json (streamed), aligned text otherwise.

In: rows (dicts) from the library, a text renderer. Out: lines on standard output. Every listing
command takes its --json from `json_option` and prints through `print_rows` (or
`print_json_lines` when it has no text form), so every --json is JSON Lines, one object per
line, written as the rows come. The item shapes of `items list`, `items search` and
`items show` are the keys below, picked from the store's rows. Matched words are marked in
bold and underlined on a terminal, else between `textsearch.MARK` (never a quotation mark of
the French or Arabic texts they are in).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TextIO

import click

from monitor.rules import Verdict
from monitor.textsearch import MARK

LISTED_ITEM_KEYS = ("id", "url", "title", "feed", "published", "fetched_at", "lang", "relevant",
                    "score", "topics", "corpus_file")
SHOWN_ITEM_KEYS = LISTED_ITEM_KEYS + (
    "text", "guid", "canonical_url", "summary", "text_source", "text_error",
    "text_error_message", "content_hash", "matches", "rules_version", "feed_url", "fetched_at",
    "label")


_JSON = json.JSONEncoder(ensure_ascii=False, default=str)  # made once, not once a row


def json_option(help: str = "Print JSON Lines.") -> Callable[[Callable], Callable]:
    """The --json flag of a listing command, reaching it as ``as_json``."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def print_json_lines(rows: Iterable[dict], batch: int = 1) -> None:
    """Each row as one line of JSON (UTF-8 kept), as the rows come (`batch` lines at a time)."""
    print_lines(map(_JSON.encode, rows), batch)


def print_rows(rows: Iterable[dict], as_json: bool, render: Callable[[dict], str],
               batch: int = 1) -> None:
    """JSON Lines with --json, else each row as `render` writes it; `batch` lines written at
    a time (one write and flush for many short lines)."""
    print_lines(map(_JSON.encode if as_json else render, rows), batch)


def print_lines(lines: Iterable[str], batch: int = 1) -> None:
    """Lines as they come, `batch` at a time (one write and flush for many short lines)."""
    chunk: list[str] = []
    try:
        for line in lines:
            chunk.append(line)
            if len(chunk) >= batch:
                click.echo("\n".join(chunk))
                chunk = []
    finally:  # the lines made before a failure are printed, as they would be one by one
        if chunk:
            click.echo("\n".join(chunk))


def picked(rows: Iterable[dict], keys: tuple[str, ...]) -> Iterator[dict]:
    """The rows with these keys only, in this order."""
    for row in rows:
        yield {key: row[key] for key in keys}


def write_output(path: str | None, write: Callable[[TextIO], int]) -> int:
    """`write` (given a text stream; it returns a count) to the file `path` (UTF-8), else to
    standard output; the count."""
    if path:
        with open(path, "w", encoding="utf-8", newline="") as out:
            return write(out)
    count = write(sys.stdout)
    sys.stdout.flush()
    return count


def label_text(label: dict) -> str:
    """An analyst's label on one line: the verdict, its topics, when, from where, its note."""
    topics = f" ({', '.join(label['topics'])})" if label["topics"] else ""
    note = f": {label['note']}" if label["note"] else ""
    return (f"{'relevant' if label['relevant'] else 'not relevant'}{topics}, labelled "
            f"{label['labelled_at'][:19].replace('T', ' ')} UTC ({label['origin']}){note}")


def shorten(text: Any, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def hit_marks() -> tuple[str, str]:
    """What goes around a matched word: bold and underlined on a terminal, else `MARK`."""
    if sys.stdout.isatty():
        start = click.style("", bold=True, underline=True, reset=False)
        return start, click.style("", reset=True)
    return MARK


def highlight(text: str, spans: list[tuple[int, int]], *, context: int = 70,
              labels: dict[tuple[int, int], str] | None = None) -> list[str]:
    """Snippets of `text` around each span, the matched words marked (`hit_marks`; labelled,
    e.g. with their group, when `labels` maps a span to a label). Spans that share a snippet
    are merged into it, so a sentence with three matches is shown once."""
    before, after = hit_marks()
    out: list[str] = []
    spans = sorted(set(spans))
    index = 0
    while index < len(spans):
        left = max(0, spans[index][0] - context)
        group = [spans[index]]
        while index + 1 < len(spans) and spans[index + 1][0] <= group[-1][1] + context:
            index += 1
            group.append(spans[index])
        right = min(len(text), group[-1][1] + context)
        pieces, cursor = [], left
        for start, end in group:
            if start < cursor:
                continue  # overlaps the previous mark
            word = before + text[start:end] + after
            if labels and (start, end) in labels:
                word += f"({labels[(start, end)]})"
            pieces += [text[cursor:start], word]
            cursor = end
        pieces.append(text[cursor:right])
        snippet = " ".join("".join(pieces).split())
        out.append(("…" if left else "") + snippet + ("…" if right < len(text) else ""))
        index += 1
    return out


def verdict_lines(verdict: Verdict, *, fired_only: bool = False) -> list[str]:
    """The score built up rule by rule: fired rules with their weight and the running total,
    then the rules that did not fire and why (with `fired_only`, how many there are)."""
    lines = []
    total = 0.0
    for outcome in verdict.rules:
        if outcome.fired:
            total += outcome.weight
            hits = ", ".join(f"{group}={count:g}" for group, count in outcome.hits.items())
            lines.append(f"  {outcome.weight:+g}  {outcome.name} [{outcome.topic or '-'}] "
                         f"({hits}) -> {total:g}")
    silent = [outcome for outcome in verdict.rules if not outcome.fired]
    if fired_only and silent:
        lines.append(f"   …  {len(silent)} rules did not fire (--all shows them)")
        silent = []
    for outcome in silent:
        hits = ", ".join(f"{group}={count:g}" for group, count in outcome.hits.items())
        lines.append(f"   0  {outcome.name}: {outcome.why} ({hits})")
    lines.append(f"  score {verdict.score:g}, threshold {verdict.threshold:g}: "
                 f"{'RELEVANT' if verdict.relevant else 'not relevant'}"
                 + (f" ({', '.join(verdict.topics)})" if verdict.topics else ""))
    return lines


def span_labels(matches: list[dict], field: str) -> dict[tuple[int, int], str]:
    """(start, end) -> the groups matched there, for `highlight`."""
    labels: dict[tuple[int, int], list[str]] = {}
    for m in matches:
        if m["field"] == field:
            labels.setdefault((m["start"], m["end"]), []).append(m["group"])
    return {span: ",".join(dict.fromkeys(groups)) for span, groups in labels.items()}


def match_lines(title: str, body: str, matches: list[dict], *, limit: int = 30) -> list[str]:
    """The matched terms in context, per field, each labelled with its group."""
    lines = []
    for field, text in (("title", title), ("body", body)):
        labels = span_labels(matches, field)
        snippets = highlight(text, list(labels), labels=labels)
        lines += [f"  [{field}] {snippet}" for snippet in snippets]
    return lines[:limit] + ([f"  … {len(lines) - limit} more"] if len(lines) > limit else [])
