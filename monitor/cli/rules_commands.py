"""The commands about the rules: rules explain, rules eval, reclassify. Thin: each parses its
options and calls one library function (`RuleSet.classify`, `evaluate`, `reclassify`)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from monitor.cli import cli, config_option, read_only
from monitor.cli.evaluation import error_lines, figure_lines
from monitor.cli.output import (
    json_option,
    match_lines,
    print_json_lines,
    shorten,
    verdict_lines,
)
from monitor.rules import load_ruleset, split_document
from monitor.rules.labelled import OPENED_FILE, SPLITS, Labelled, labelled_record


@cli.group()
def rules() -> None:
    """The keyword rules: explain a verdict, measure them on a labelled set."""


def _read_source(source: str) -> tuple[str, str]:
    """(what it is, text): a file's content, standard input for -, else the text itself."""
    if source == "-":
        return "stdin", sys.stdin.read()
    path = Path(source)
    try:
        if path.is_file():
            return str(path), path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise click.BadParameter(f"cannot read {source}: {exc.strerror}") from exc
    return "text", source


@rules.command("explain")
@config_option
@click.argument("source", metavar="TEXT-OR-FILE")
@json_option("Print the explanation as JSON.")
def rules_explain(config, source: str, as_json: bool) -> None:
    """Show how a text is scored, rule by rule, with every match (term, group, field, offsets).

    TEXT-OR-FILE is a file to read, - for standard input, or the text itself. Its first line is
    the title when a blank line follows it."""
    rules_set = load_ruleset(config.settings.rules_file)
    origin, text = _read_source(source)
    title, body = split_document(text)
    verdict = rules_set.classify(title, body)
    if as_json:
        print_json_lines([{"source": origin, "title": title, **verdict.as_dict()}])
        return
    click.echo(f"{origin}: {shorten(title or body, 100)}")
    click.echo(f"rules {verdict.version}, threshold {verdict.threshold:g}, title matches count "
               f"{rules_set.spec.title_weight:g}x")
    for line in verdict_lines(verdict):
        click.echo(line)
    matches = verdict.matches_with_rules()
    click.echo(f"matches ({len(matches)}):")
    for line in match_lines(title, body, matches):
        click.echo(line)


@rules.command("eval")
@config_option
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False), metavar="[FILE]...")
@click.option("--labels", "stored", is_flag=True,
              help="Measure on the stored labels (each labelled item's latest label, its text "
                   "as stored) instead of files.")
@click.option("--split", type=click.Choice(SPLITS), default=None,
              help="Only the lines of this split (a frozen line whose id is in the opened list "
                   "counts as tuning).")
@click.option("--opened", type=click.Path(dir_okay=False), default=None,
              help=f"The opened list: ids of frozen lines that were looked at, one a line "
                   f"(default: {OPENED_FILE} beside the first FILE).")
@click.option("--show-errors", is_flag=True,
              help="Also print the errors on frozen lines, and add their ids to the opened "
                   "list: a text that was looked at is no longer frozen.")
@json_option("Print JSON Lines: one line per error shown, then a summary line.")
def rules_eval(config, files: tuple[str, ...], stored: bool, split: str | None,
               opened: str | None, show_errors: bool, as_json: bool) -> None:
    """Precision, recall and F1 of the rules on labelled JSON Lines files (or the stored
    labels), overall, per language and on the clear items, the confusion table, and each false
    positive / negative with its explanation.

    Each line: {"text" or "path", "relevant": true|false}, with "title", "id", "lang",
    "topics", "confidence" (clear|borderline) and "split" (tuning|frozen) when known; a path
    is relative to its file. A title given apart is scored as a stored item's is (`monitor
    labels export` writes such lines). The errors on frozen lines are counted, not shown,
    unless --show-errors."""
    from monitor.rules.evaluate import evaluate
    from monitor.rules.labelled import add_opened, read_labelled_files

    if stored == bool(files):
        raise click.UsageError("give labelled FILEs, or --labels for the stored labels")
    rules_set = load_ruleset(config.settings.rules_file)
    opened_list = None
    if stored:
        if split or opened or show_errors:
            raise click.UsageError("the stored labels have no frozen split: --split, --opened "
                                   "and --show-errors are for labelled files")
        labelled = _stored_labelled(read_only(config))
    else:
        opened_list = Path(opened) if opened else Path(files[0]).parent / OPENED_FILE
        labelled = read_labelled_files(map(Path, files), opened=opened_list, split=split)
    result = evaluate(rules_set, labelled)
    frozen = result.frozen_errors
    shown = result.errors if show_errors else [o for o in result.errors
                                               if o.item.split != "frozen"]
    added = add_opened(opened_list, [o.item.id for o in frozen]) if show_errors and frozen \
        else []
    where = "stored labels" if stored else ", ".join(files)
    if as_json:
        print_json_lines(_error_rows(shown))
        print_json_lines([{"summary": True, "files": list(files), "labels": stored,
                           "split": split, "rules_version": rules_set.version,
                           **result.summary(), "errors_hidden": len(result.errors) - len(shown),
                           "opened": str(opened_list) if opened_list else None,
                           "opened_added": added}])
        return
    click.echo(f"{where}: {result.items} items{f' ({split} split)' if split else ''}, "
               f"rules {rules_set.version}")
    for line in figure_lines(result):
        click.echo(line)
    for outcome in shown:
        click.echo("")
        for line in error_lines(outcome):
            click.echo(line)
    if len(shown) < len(result.errors):
        click.echo(f"\n{len(frozen)} errors on frozen lines not shown (looking at them would "
                   f"unfreeze them): --show-errors prints them and adds their ids to "
                   f"{opened_list}")
    if added:
        click.echo(f"\nadded {len(added)} ids to {opened_list}: opened, they count as tuning "
                   "from now on")


def _stored_labelled(engine) -> Iterator[Labelled]:
    from monitor.store.labels import labelled_items

    for row in labelled_items(engine, text=True):
        yield labelled_record(row, source="stored label", line=None)


def _error_rows(errors):
    for outcome in errors:
        item, verdict = outcome.item, outcome.verdict
        yield {"kind": outcome.kind, "id": item.id, "source": item.source, "line": item.line,
               "lang": item.lang, "relevant": item.relevant, "score": verdict.score,
               "topics": list(verdict.topics),
               "fired": [o.name for o in verdict.rules if o.fired],
               "matches": verdict.term_counts()}


@cli.command()
@config_option
@click.option("--force", is_flag=True,
              help="Also items already classified by the current rules version.")
@json_option("Print JSON Lines: one line per item whose relevance changed, then a summary.")
def reclassify(config, force: bool, as_json: bool) -> None:
    """Re-apply the current rules to every stored item and report what changed.

    One transaction per batch of items; corpus files are written for newly relevant items (the
    corpus is append-only: an item no longer relevant keeps its file)."""
    from monitor.corpus import Corpus
    from monitor.store.corpusnumbers import CorpusNumbers
    from monitor.worker.reclassify import reclassify as run
    from monitor.worker.writable import open_storage

    settings = config.settings
    rules_set = load_ruleset(settings.rules_file)
    engine = open_storage(settings)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = click.progressbar(length=total, label="reclassifying", file=sys.stderr)
            bar.__enter__()
        bar.update(done - bar.pos)

    try:
        report = run(engine, rules_set, Corpus(settings.corpus_dir, CorpusNumbers(engine)),
                     force=force, progress=progress)
    finally:
        if bar is not None:
            bar.__exit__(None, None, None)
    if as_json:
        print_json_lines({"id": c.id, "title": c.title, "was": c.was, "now": c.now,
                          "score": c.score, "topics": list(c.topics),
                          "corpus_file": c.corpus_file} for c in report.changes)
        print_json_lines([{"summary": True, **report.summary()}])
        return
    for change in report.changes:
        what = "now relevant     " if change.now else "no longer relevant"
        click.echo(f"{change.id:>7} {what} {change.score:>5g} {shorten(change.title, 70)}"
                   + (f"  -> {change.corpus_file}" if change.now and change.corpus_file else ""))
    click.echo(f"rules {report.version}: {report.items} items, {report.rewritten} re-classified "
               f"({report.skipped} already at this version); {report.newly_relevant} newly "
               f"relevant, {report.no_longer_relevant} no longer relevant; "
               f"{report.corpus_files} corpus files written")
