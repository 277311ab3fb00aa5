"""The analyst's commands: items label, labels list, labels export. Thin: each parses its options
and calls one store function (`record_label`, `labelled_items`).

`items label` writes the database (its schema brought up to date, as the other commands that
write do); `labels list` and `labels export` only read it.
"""

from __future__ import annotations

import click

from monitor.cli import cli, config_option, read_only
from monitor.cli.commands import items
from monitor.cli.output import (
    json_option,
    label_text,
    picked,
    print_rows,
    shorten,
    write_output,
)
from monitor.rules.ruleset import TOPICS
from monitor.store.engine import LARGEST_ID

# A line of `labels export`: what `rules eval` needs to score the item exactly as it was stored
# (title, text and text_source), what it reports by (lang), and the label.
EXPORTED_KEYS = ("id", "title", "text", "text_source", "lang", "feed", "url", "relevant",
                 "topics", "note", "labelled_at", "origin")
LISTED_KEYS = ("id", "title", "relevant", "topics", "note", "labelled_at", "origin", "latest",
               "verdict", "agrees")


@items.command("label")
@config_option
@click.argument("item_id", type=click.IntRange(min=0, max=LARGEST_ID))
@click.option("--relevant/--not-relevant", "relevant", default=None,
              help="Your verdict: the item is relevant (Morocco is its subject, and AI, "
                   "cyber-security, data protection or digital policy its main subject), or not.")
@click.option("--topic", "topics", multiple=True, type=click.Choice(TOPICS),
              help="A topic of a relevant item; repeat it for more.")
@click.option("--note", default="", help="Why, in a few words (kept with the label).")
def items_label(config, item_id: int, relevant: bool | None, topics: tuple[str, ...],
                note: str) -> None:
    """Label a stored item: relevant or not, its topics, a note. Every label is kept; an item's
    latest label is its label (`monitor labels list`, `monitor rules eval --labels`)."""
    from monitor.store.labels import make_label, record_label
    from monitor.worker.writable import open_database

    if relevant is None:
        raise click.UsageError("say --relevant or --not-relevant")
    try:
        label = make_label(item_id, relevant=relevant, topics=topics, note=note, origin="cli")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if not record_label(open_database(config.settings), label):
        raise click.ClickException(f"no item with id {item_id}; see `monitor items list`")
    click.echo(f"item {item_id}: {label_text(label.as_dict())}")


@cli.group()
def labels() -> None:
    """Your labels on stored items: beside the rules' verdicts, or exported for rules eval."""


@labels.command("list")
@config_option
@click.option("--all", "every_act", is_flag=True,
              help="Every labelling act, oldest first for each item (default: each item's "
                   "latest label).")
@json_option()
def labels_list(config, every_act: bool, as_json: bool) -> None:
    """Labelled items by id: the label (relevant or not, topics, note, time) beside the rules'
    stored verdict; DIFFERS marks an item the rules judged otherwise."""
    from monitor.store.labels import labelled_items

    def rows():
        for row in labelled_items(read_only(config), every_act=every_act):
            yield {**row, "agrees": row["relevant"] == row["verdict"]["relevant"]}

    def render(r: dict) -> str:
        verdict = r["verdict"]
        rules = (f"rules: {'relevant' if verdict['relevant'] else 'not relevant'} "
                 f"{verdict['score']:g}"
                 + (f" ({', '.join(verdict['topics'])})" if verdict["topics"] else ""))
        mark = "agrees " if r["agrees"] else "DIFFERS"
        older = "" if r["latest"] else " (replaced)"
        return (f"{r['id']:>6} {mark} {shorten(r['title'], 70)}\n"
                f"{'':>15}label: {label_text(r)}{older}\n{'':>15}{rules}")

    print_rows(picked(rows(), LISTED_KEYS), as_json, render)


@labels.command("export")
@config_option
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of standard output.")
def labels_export(config, output: str | None) -> None:
    """Each labelled item and its latest label as one JSON line, readable by `monitor rules
    eval FILE`: id, title and text as stored (what the rules classified), text_source, lang,
    feed, url, relevant, topics, note, labelled_at, origin."""
    from monitor.report.export import export_items
    from monitor.store.labels import labelled_items

    rows = picked(labelled_items(read_only(config), text=True), EXPORTED_KEYS)
    count = write_output(output, lambda out: export_items(rows, out, fmt="jsonl"))
    click.echo(f"exported {count} labelled items", err=True)
