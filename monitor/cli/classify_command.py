"""`monitor classify`: the rules applied to text files, one verdict a file.

In: paths of text files (UTF-8, undecodable bytes replaced; - for standard input) and the rules
file of the settings. Out: one line a file, in the order given (JSON Lines with --json: path,
relevant, score, topics, term counts). An unreadable file stops the command (exit 2) once the
lines of the files before it are printed. Kept apart from the other commands so that it loads
only the rules (their file named by monitor.yaml, read alone: `configpaths`), not the settings'
models nor the database code.

Many files (over `_PARALLEL_ABOVE` bytes in all) are classified by one process a core, forked
once the rules are loaded, their lines printed in the order given (`classify_processes`).
Standard input is read in this process.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from json.encoder import encode_basestring as _json_string

import click

from monitor.cli import cli, config_option
from monitor.cli.output import json_option, print_lines
from monitor.rules import RuleSet, Verdict, load_ruleset, split_document


@cli.command()
@config_option
@click.argument("paths", nargs=-1, required=True)
@json_option()
def classify(config, paths: tuple[str, ...], as_json: bool) -> None:
    """Apply the rules to text files (or - for standard input)."""
    rules = load_ruleset(config.rules_file)
    # The rules and the modules loaded so far live as long as the command: out of the cyclic
    # garbage collector's way, which would else go through them again and again, and at exit.
    gc.freeze()
    line = _json_line if as_json else _text_line
    lines_of = partial(_lines, rules, line)
    processes = _processes_for(paths)
    if processes > 1:
        from monitor.cli.classify_processes import lines_in_processes
        print_lines(lines_in_processes(lines_of, paths, processes), batch=_BATCH)
    else:
        print_lines(lines_of(paths), batch=_BATCH)


_Line = Callable[[str, Verdict], str]  # the line printed for a file and its verdict


def _text_line(path: str, verdict: Verdict) -> str:
    return (f"{path}: {'relevant' if verdict.relevant else 'not relevant'} "
            f"score={verdict.score:g} topics={','.join(verdict.topics) or '-'} terms="
            + ", ".join(f"{term}×{count}" for term, count in verdict.counted_terms()[:8]))


def _json_line(path: str, verdict: Verdict) -> str:
    """The verdict as `monitor.cli.output`'s JSON encoder writes the row {path, relevant,
    score, topics, matches: [{term, count}]}, byte for byte, written out here: the encoder's
    set-up and a dict a match cost more than classifying a short text's title."""
    topics = ", ".join(map(_json_string, verdict.topics))
    matches = ", ".join([f"{_term_json(term)}{count}}}"
                         for term, count in verdict.counted_terms()])
    return (f'{{"path": {_json_string(path)}, '
            f'"relevant": {"true" if verdict.relevant else "false"}, '
            f'"score": {verdict.score!r}, "topics": [{topics}], "matches": [{matches}]}}')


_TERM_JSON: dict[str, str] = {}


def _term_json(term: str) -> str:
    """The start of a match's JSON, up to its count (made once a term)."""
    start = _TERM_JSON.get(term)
    if start is None:
        start = _TERM_JSON[term] = f'{{"term": {_json_string(term)}, "count": '
    return start


_BATCH = 256  # lines written at once: thousands of short files print thousands of lines
# bytes of files: below it, forking (a few ms) and sharing out cost about what a second core
# saves (one process classifies, counts and prints about 25 MB/s of short files)
_PARALLEL_ABOVE = 1_000_000


def _lines(rules: RuleSet, line: _Line, paths: Sequence[str]) -> Iterator[str]:
    for path in paths:
        yield line(path, rules.classify(*split_document(_read_text(path))))


def _processes_for(paths: Sequence[str]) -> int:
    """Processes to classify `paths` with: one a core when the files are many bytes, else 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or "-" in paths or not hasattr(os, "fork"):
        return 1
    size = 0
    for path in paths:
        try:
            size += os.stat(path).st_size
        except OSError:
            continue  # said when its turn comes to be read
        if size > _PARALLEL_ABOVE:
            return cores
    return 1


def _read_text(path: str) -> str:
    """A file (standard input for -) as text: UTF-8, undecodable bytes replaced, line ends
    read as \\n (as text mode reads them), without a file object's cost per file."""
    if path == "-":
        return sys.stdin.read()
    try:
        handle = os.open(path, os.O_RDONLY)
        try:
            chunks = []
            while chunk := os.read(handle, _READ_SIZE):  # until EOF (a FIFO reads short)
                chunks.append(chunk)
        finally:
            os.close(handle)
    except OSError as exc:
        raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
    text = b"".join(chunks).decode("utf-8", "replace")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


_READ_SIZE = 1 << 17
