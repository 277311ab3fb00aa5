"""`monitor classify`: the rules applied to text files, one verdict a file.

In: paths of text files (UTF-8, undecodable bytes replaced; - for standard input) and the rules
file of the settings. Out: one line a file, in the order given (JSON Lines with --json: path,
relevant, score, topics, term counts). An unreadable file stops the command (exit 2) once the
lines of the files before it are printed. Kept apart from the other commands so that it loads
only the rules and the settings, not the database code.
"""

from __future__ import annotations

import gc
import sys

import click

from monitor.cli import cli, config_option
from monitor.cli.output import json_option, print_rows
from monitor.rules import load_ruleset, split_document


@cli.command()
@config_option
@click.argument("paths", nargs=-1, required=True)
@json_option()
def classify(config, paths: tuple[str, ...], as_json: bool) -> None:
    """Apply the rules to text files (or - for standard input)."""
    rules = load_ruleset(config.settings.rules_file)
    # The rules and the modules loaded so far live as long as the command: out of the cyclic
    # garbage collector's way, which would else go through them again and again, and at exit.
    gc.freeze()

    def verdicts():
        for path in paths:
            verdict = rules.classify(*split_document(_read_text(path)))
            yield {"path": path, "relevant": verdict.relevant, "score": verdict.score,
                   "topics": list(verdict.topics), "matches": verdict.term_counts()}

    print_rows(verdicts(), as_json, lambda r: (
        f"{r['path']}: {'relevant' if r['relevant'] else 'not relevant'} score={r['score']:g} "
        f"topics={','.join(r['topics']) or '-'} terms="
        + ", ".join(f"{m['term']}×{m['count']}" for m in r["matches"][:8])), batch=_BATCH)


_BATCH = 256  # lines written at once: thousands of short files print thousands of lines


def _read_text(path: str) -> str:
    """A file (standard input for -) as text: UTF-8, undecodable bytes replaced, line ends
    read as \\n (as text mode reads them), without text mode's cost per file."""
    if path == "-":
        return sys.stdin.read()
    try:
        with open(path, "rb") as handle:
            text = handle.read().decode("utf-8", "replace")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


