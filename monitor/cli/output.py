"""One way to print listings: JSON Lines with --json (streamed), aligned text otherwise."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

import click

from monitor.rules import Verdict


def print_json_lines(rows: Iterable[dict]) -> None:
    for row in rows:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))


def print_rows(rows: Iterable[dict], as_json: bool, render: Callable[[dict], str]) -> None:
    if as_json:
        print_json_lines(rows)
        return
    for row in rows:
        click.echo(render(row))


def shorten(text: Any, width: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def highlight(text: str, spans: list[tuple[int, int]], *, context: int = 70) -> list[str]:
    """Snippets of `text` around each span, the matched words marked."""
    color = sys.stdout.isatty()
    marked = []
    for start, end in sorted(set(spans)):
        left = max(0, start - context)
        right = min(len(text), end + context)
        word = text[start:end]
        word = click.style(word, bold=True, fg="yellow") if color else f"«{word}»"
        snippet = " ".join((text[left:start] + word + text[end:right]).split())
        marked.append(("…" if left else "") + snippet + ("…" if right < len(text) else ""))
    return marked


def verdict_lines(verdict: Verdict) -> list[str]:
    """The score built up rule by rule."""
    lines = []
    total = 0.0
    for outcome in verdict.rules:
        hits = ", ".join(f"{group}={count:g}" for group, count in outcome.hits.items())
        if outcome.fired:
            total += outcome.weight
            lines.append(f"  + {outcome.weight:g}  {outcome.name} [{outcome.topic or '-'}] "
                         f"({hits}) -> {total:g}")
        else:
            lines.append(f"    0  {outcome.name}: {outcome.why} ({hits})")
    lines.append(f"  score {verdict.score:g}, threshold {verdict.threshold:g}: "
                 f"{'RELEVANT' if verdict.relevant else 'not relevant'}")
    return lines
