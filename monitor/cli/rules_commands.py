"""The commands about the rules: rules explain, rules eval, reclassify. Thin: each parses its
options and calls one library function (`RuleSet.classify`, `evaluate`, `reclassify`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.cli import cli, config_option
from monitor.cli.output import (
    json_option,
    match_lines,
    print_json_lines,
    shorten,
    verdict_lines,
)
from monitor.cli.progress import ProgressLine, quiet_option
from monitor.rules import load_ruleset, split_document


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
@click.argument("labelled", type=click.Path(dir_okay=False))
@json_option("Print JSON Lines: one line per error, then a summary line.")
def rules_eval(config, labelled: str, as_json: bool) -> None:
    """Precision, recall and F1 of the rules on a labelled JSON Lines file, the confusion table,
    and each false positive / negative with its explanation.

    Each line: {"text": ... or "path": ..., "relevant": true|false} (a path is relative to the
    file; "id" is shown when present)."""
    from monitor.rules.evaluate import evaluate, read_labelled

    rules_set = load_ruleset(config.settings.rules_file)
    result = evaluate(rules_set, read_labelled(Path(labelled)))
    if as_json:
        print_json_lines(_error_rows(result.errors))
        print_json_lines([{"summary": True, "file": labelled, "rules_version": rules_set.version,
                           **result.summary()}])
        return
    click.echo(f"{labelled}: {result.tp + result.fp + result.fn + result.tn} items, "
               f"rules {rules_set.version}")
    click.echo(f"precision {result.precision:.3f}  recall {result.recall:.3f}  "
               f"F1 {result.f1:.3f}")
    click.echo("                  labelled relevant   labelled not")
    click.echo(f"  kept (relevant)   {result.tp:>10}        {result.fp:>10}")
    click.echo(f"  dropped           {result.fn:>10}        {result.tn:>10}")
    for outcome in result.errors:
        item, verdict = outcome.item, outcome.verdict
        label = "false positive" if outcome.kind == "FP" else "false negative"
        click.echo(f"\n{label}: {item.id} (line {item.line}) "
                   f"{shorten(split_document(item.text)[0] or item.text, 90)}")
        for line in verdict_lines(verdict):
            click.echo(line)
        terms = ", ".join(f"{m['term']}×{m['count']}" for m in verdict.term_counts()[:12])
        click.echo(f"  terms: {terms or '-'}")


def _error_rows(errors):
    for outcome in errors:
        verdict = outcome.verdict
        yield {"kind": outcome.kind, "id": outcome.item.id, "line": outcome.item.line,
               "relevant": outcome.item.relevant, "score": verdict.score,
               "topics": list(verdict.topics),
               "fired": [o.name for o in verdict.rules if o.fired],
               "matches": verdict.term_counts()}


@cli.command()
@config_option
@click.option("--force", is_flag=True,
              help="Also items already classified by the current rules version.")
@json_option("Print JSON Lines: one line per item whose relevance changed, then a summary.")
@quiet_option
def reclassify(config, force: bool, as_json: bool, quiet: bool) -> None:
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
    with ProgressLine("reclassifying", 0, quiet=quiet) as progress:
        report = run(engine, rules_set, Corpus(settings.corpus_dir, CorpusNumbers(engine)),
                     force=force, progress=lambda done, total: progress.update(done, total))
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
