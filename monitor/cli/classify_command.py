"""`monitor classify`: the rules applied to text files, one verdict a file.

In: paths of text files (UTF-8, undecodable bytes replaced; - for standard input) and the rules
file of the settings. Out: one line a file, in the order given (JSON Lines with --json: path,
relevant, score, topics, term counts). An unreadable file stops the command (exit 2) once the
lines of the files before it are printed. Kept apart from the other commands so that it loads
only the rules and the settings, not the database code.

Many files (over `_PARALLEL_ABOVE` bytes in all) are classified in a pool of processes, one a
core, forked once the rules are loaded (so no process compiles or reads them again): chunks of
files go out, their printed lines come back in the order given, and the output is the one of a
single process, an unreadable file included. Standard input is read in this process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence

import click

from monitor.cli import cli, config_option
from monitor.cli.output import json_option, print_lines, row_printer
from monitor.rules import RuleSet, load_ruleset, split_document


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
    line = row_printer(as_json, _render)
    processes = _processes_for(paths)
    print_lines(_lines_from_pool(rules, line, paths, processes) if processes > 1 else
                map(line, _verdicts(rules, paths)), batch=_BATCH)


def _render(row: dict) -> str:
    return (f"{row['path']}: {'relevant' if row['relevant'] else 'not relevant'} "
            f"score={row['score']:g} topics={','.join(row['topics']) or '-'} terms="
            + ", ".join(f"{m['term']}×{m['count']}" for m in row["matches"][:8]))


_BATCH = 256  # lines written at once: thousands of short files print thousands of lines
# bytes of files: below it, starting the pool (0.02-0.05 s) costs about what a second core saves
# (one process classifies, counts and prints about 20 MB/s of short files)
_PARALLEL_ABOVE = 1_000_000
_CHUNK = 128  # files a pool task: few round trips, and the first lines printed early


def _verdicts(rules: RuleSet, paths: Sequence[str]) -> Iterator[dict]:
    for path in paths:
        verdict = rules.classify(*split_document(_read_text(path)))
        yield {"path": path, "relevant": verdict.relevant, "score": verdict.score,
               "topics": list(verdict.topics), "matches": verdict.term_counts()}


def _processes_for(paths: Sequence[str]) -> int:
    """Processes to classify `paths` with: one a core when the files are many bytes, else 1."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    if (cores or 1) < 2 or "-" in paths or "fork" not in multiprocessing.get_all_start_methods():
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


def _lines_from_pool(rules: RuleSet, line: Callable[[dict], str], paths: Sequence[str],
                     processes: int) -> Iterator[str]:
    """The lines of `paths`' rows (`line` of each), in order, made by `processes` forked
    processes; an unreadable file raises as `_read_text` does, once the lines before it are out."""
    chunks = [paths[start:start + _CHUNK] for start in range(0, len(paths), _CHUNK)]
    with multiprocessing.get_context("fork").Pool(
            processes, initializer=_adopt, initargs=(rules, line)) as pool:  # stopped on leaving
        for lines, failure in pool.imap(_chunk_lines, chunks):
            yield from lines
            if failure is not None:
                raise click.BadParameter(failure)


# In a pool process: the rules and the line maker of the command that forked it (inherited
# through the fork, not pickled).
_forked_from: tuple[RuleSet, Callable[[dict], str]] | None = None


def _adopt(rules: RuleSet, line: Callable[[dict], str]) -> None:
    global _forked_from
    _forked_from = rules, line


def _chunk_lines(paths: Sequence[str]) -> tuple[list[str], str | None]:
    """In a pool process: the lines of `paths` up to the first unreadable file, and what
    `_read_text` said of it (None when every file was read)."""
    rules, line = _forked_from
    lines: list[str] = []
    try:
        for row in _verdicts(rules, paths):
            lines.append(line(row))
    except click.BadParameter as exc:
        return lines, exc.message
    return lines, None


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


