"""The commands about the rules: rules explain, rules eval, rules suggest, reclassify. Thin:
each parses its options and calls one library function (`RuleSet.classify`, `evaluate`,
`suggest`, `reclassify`)."""

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
from monitor.cli.progress import ProgressLine, quiet_option
from monitor.rules import load_ruleset, split_document
from monitor.rules.labelled import OPENED_FILE, SPLITS, Labelled, labelled_record


@cli.group()
def rules() -> None:
    """The keyword rules: explain a verdict, measure them on a labelled set, suggest terms."""


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
    rules_set = load_ruleset(config.rules_file)
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


def labelled_sources(verb: str):
    """The options of a command that reads labelled texts: FILEs, or --labels for the stored
    labels; --split and --opened for the files' frozen split."""
    options = [
        click.argument("files", nargs=-1, type=click.Path(dir_okay=False), metavar="[FILE]..."),
        click.option("--labels", "stored", is_flag=True,
                     help=f"{verb} the stored labels (each labelled item's latest label, its "
                          "text as stored) instead of files."),
        click.option("--split", type=click.Choice(SPLITS), default=None,
                     help="Only the lines of this split (a frozen line whose id is in the "
                          "opened list counts as tuning)."),
        click.option("--opened", type=click.Path(dir_okay=False), default=None,
                     help=f"The opened list: ids of frozen lines that were looked at, one a "
                          f"line (default: {OPENED_FILE} beside the first FILE)."),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def _labelled_texts(config, files: tuple[str, ...], stored: bool, split: str | None,
                    opened: str | None) -> tuple[Iterator[Labelled], Path | None]:
    """The labelled texts of the FILEs, or the stored labels; and the opened list in use."""
    from monitor.rules.labelled import read_labelled_files

    if stored == bool(files):
        raise click.UsageError("give labelled FILEs, or --labels for the stored labels")
    if stored:
        if split or opened:
            raise click.UsageError("the stored labels have no frozen split: --split and "
                                   "--opened are for labelled files")
        return _stored_labelled(read_only(config)), None
    opened_list = Path(opened) if opened else Path(files[0]).parent / OPENED_FILE
    return read_labelled_files(map(Path, files), opened=opened_list, split=split), opened_list


@rules.command("eval")
@config_option
@labelled_sources("Measure on")
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
    from monitor.rules.labelled import add_opened

    if stored and show_errors:
        raise click.UsageError("the stored labels have no frozen split: --show-errors is for "
                               "labelled files")
    labelled, opened_list = _labelled_texts(config, files, stored, split, opened)
    rules_set = load_ruleset(config.rules_file)
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


@rules.command("suggest")
@config_option
@labelled_sources("Learn from")
@click.option("--lang", default=None,
              help="Only the texts labelled with this language (fr, ar, en ...); by default "
                   "each language apart.")
@click.option("--top", type=click.IntRange(min=1), default=20, show_default=True,
              help="Candidates shown per side and language.")
@click.option("--min-count", type=click.IntRange(min=1), default=3, show_default=True,
              help="Texts a candidate must be in, on the side it points to.")
@json_option("Print JSON Lines: one line per candidate, then a summary line.")
def rules_suggest(config, files: tuple[str, ...], stored: bool, split: str | None,
                  opened: str | None, lang: str | None, top: int, min_count: int,
                  as_json: bool) -> None:
    """Words and phrases (1 to 3 words, folded as the rules fold) that tell relevant from not
    relevant texts in labelled JSON Lines files, and that no group of the rules holds yet:
    in how many texts of each side, and a score (z of a log-odds ratio; positive: relevant).
    Candidates only: rules.yaml is not changed.

    Each line as for `rules eval`, with "lang" to take each language apart."""
    from monitor.rules.suggest import suggest

    texts, _ = _labelled_texts(config, files, stored, split, opened)
    rules_set = load_ruleset(config.rules_file)
    found = suggest(texts, rules_set, lang=lang, top=top, min_count=min_count)
    if as_json:
        print_json_lines({"lang": s.lang, **c.as_dict()} for s in found for c in s.candidates)
        print_json_lines([{"summary": True, "files": list(files), "labels": stored,
                           "rules_version": rules_set.version, "languages": [
                               {"lang": s.lang, "relevant_texts": s.relevant_texts,
                                "not_relevant_texts": s.not_relevant_texts,
                                "candidates": len(s.candidates)} for s in found]}])
        return
    if not found:
        click.echo("no labelled texts" + (f" in {lang}" if lang else ""))
    for suggestions in found:
        click.echo(f"{suggestions.lang or 'no language'}: {suggestions.relevant_texts} relevant "
                   f"and {suggestions.not_relevant_texts} not relevant texts")
        if not (suggestions.relevant_texts and suggestions.not_relevant_texts):
            click.echo("  nothing to compare: texts of both sides are needed")
            continue
        for side in ("relevant", "not relevant"):
            shown = [c for c in suggestions.candidates if c.side == side]
            click.echo(f"  pointing to {side}: {len(shown) or 'none'}")
            if shown:
                click.echo("    relevant  not  score  phrase")
            for c in shown:
                click.echo(f"    {c.relevant:>8} {c.not_relevant:>4} {c.score:>6.2f}  {c.phrase}")


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
@click.option("--dry-run", is_flag=True,
              help="Report what would change and write nothing: no verdict, no corpus file, "
                   "no move (the database is opened read-only).")
@json_option("Print JSON Lines: one line per item whose relevance changed, then a summary.")
@quiet_option
def reclassify(config, force: bool, dry_run: bool, as_json: bool, quiet: bool) -> None:
    """Re-apply the current rules to every stored item and report what changed.

    One transaction per batch of items. A newly relevant item gets a corpus file; the file of
    an item no longer relevant moves to the corpus folder's withdrawn/ subfolder, and back when
    it is relevant again (the seed files never move)."""
    from monitor.corpus import Corpus
    from monitor.store.corpusnumbers import CorpusNumbers
    from monitor.worker.reclassify import reclassify as run
    from monitor.worker.writable import open_storage

    settings = config.settings
    rules_set = load_ruleset(settings.rules_file)
    if dry_run:
        engine = read_only(config)
        corpus = Corpus(settings.corpus_dir)  # read, never written: no numbers needed
    else:
        engine = open_storage(settings)
        corpus = Corpus(settings.corpus_dir, CorpusNumbers(engine))
    with ProgressLine("reclassifying", 0, quiet=quiet) as progress:
        report = run(engine, rules_set, corpus, force=force, dry_run=dry_run,
                     progress=lambda done, total: progress.update(done, total),
                     alerts=settings.alerts)
    if as_json:
        print_json_lines({"id": c.id, "title": c.title, "was": c.was, "now": c.now,
                          "score": c.score, "topics": list(c.topics),
                          "corpus_file": c.corpus_file, "corpus": c.corpus}
                         for c in report.changes)
        print_json_lines([{"summary": True, **report.summary()}])
        return
    for change in report.changes:
        what = "now relevant     " if change.now else "no longer relevant"
        click.echo(f"{change.id:>7} {what} {change.score:>5g} {shorten(change.title, 70)}"
                   + _corpus_note(change, report.dry_run))
    click.echo(_summary_line(report)
               + (f"; {report.announced} alert entries {'would be ' if report.dry_run else ''}"
                  f"queued" if settings.alerts else ""))


def _corpus_note(change, dry_run: bool) -> str:
    """What happened (or would happen) to a changed item's corpus file, for its line."""
    if change.corpus is None:
        return ""
    return (f"  corpus file {'would be ' if dry_run else ''}{change.corpus}"
            + (f": {change.corpus_file}" if change.corpus_file else ""))


def _summary_line(report) -> str:
    would = "would be " if report.dry_run else ""
    pending = report.settled.moved
    return (f"{'dry run, nothing written: ' if report.dry_run else ''}rules {report.version}: "
            f"{report.items} items, {report.rewritten} {would}re-classified "
            f"({report.skipped} already at this version); {report.newly_relevant} newly "
            f"relevant, {report.no_longer_relevant} no longer relevant; corpus files: "
            f"{report.corpus_files} {would}written, {report.withdrawn} {would}withdrawn, "
            f"{report.restored} {would}restored"
            + (f", {pending} moves left by an interrupted run {would}finished" if pending else "")
            + f"; {report.withdrawn_files} in withdrawn/")
