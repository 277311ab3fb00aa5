"""items list, items search, items show: the stored items. Thin: each parses its options, calls
the store's listing, search or item look-up, and formats the rows. Read only (`read_only`)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import click

from monitor.cli import config_option, read_only
from monitor.cli.commands import items
from monitor.cli.output import (
    LISTED_ITEM_KEYS,
    SHOWN_ITEM_KEYS,
    hit_marks,
    json_option,
    picked,
    print_json_lines,
    print_rows,
    shorten,
    span_labels,
    verdict_lines,
)
from monitor.rules import load_ruleset
from monitor.store.engine import LARGEST_ID
from monitor.store.listings import SORTS
from monitor.textsearch import MARK, SYNTAX

DEFAULT_LIMIT = 50
_DAYS_AGO = re.compile(r"^(\d{1,5})d$")
_SORT_WORDS = {"published": "newest published first", "kept": "newest kept first",
               "score": "best score first", "best": "best match first"}


def _day(ctx: click.Context, param: click.Parameter, value: str | None) -> date | None:
    """YYYY-MM-DD, or Nd: the UTC day N days ago (0d: today)."""
    if value is None:
        return None
    if (ago := _DAYS_AGO.match(value)) is not None:
        return datetime.now(UTC).date() - timedelta(days=int(ago.group(1)))
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a day; write YYYY-MM-DD, or 7d for seven "
                                 "days ago") from None


def _feed_id(engine, reference: str | None) -> int | None:
    """The id of the stored feed with this id, URL or name; a usage error if none or several."""
    from monitor.store.listings import feeds_named

    if reference is None:
        return None
    found = feeds_named(engine, reference)
    if len(found) != 1:
        which = ("no stored feed" if not found else
                 "several feeds (" + ", ".join(f"{f['id']}: {f['url']}" for f in found) + ")")
        raise click.BadParameter(f"{reference!r} names {which}; give a feed's id, URL or name "
                                 "as `monitor feeds list` shows it", param_hint="--feed")
    return found[0]["id"]


def _date_of(row: dict) -> str:
    """The day of the publication time, YYYY-MM-DD (the time kept when the feed gave none)."""
    return (row["published"] or row["fetched_at"] or "")[:10]


@items.command("list")
@config_option
@click.option("--since", callback=_day, metavar="DAY",
              help="Only items published on DAY or later (YYYY-MM-DD or 7d for seven days "
                   "ago; UTC; the day kept when the feed gave no date).")
@click.option("--until", callback=_day, metavar="DAY",
              help="Only items published on DAY or before (same forms as --since).")
@click.option("--feed", "feed", metavar="ID|URL|NAME", help="Only the items of this feed.")
@click.option("--topic", help="Only items of this topic (ai, cyber, data-protection, ...).")
@click.option("--lang", help="Only items in this language (fr, ar, en, ...).")
@click.option("--relevant", is_flag=True, help="Only relevant items.")
@click.option("--sort", type=click.Choice(SORTS), default="published", show_default=True,
              help="published: newest publication first (the time kept when the feed gave "
                   "none); kept: newest kept first; score: best score first.")
@click.option("--limit", type=click.IntRange(min=0, max=LARGEST_ID), default=DEFAULT_LIMIT,
              show_default=True, help="At most N items; 0 for all of them.")
@click.option("--text", "with_text", is_flag=True, help="Include the stored text.")
@json_option()
def items_list(config, since: date | None, until: date | None, feed: str | None,
               topic: str | None, lang: str | None, relevant: bool, sort: str, limit: int,
               with_text: bool, as_json: bool) -> None:
    """Stored items, newest published first, with a header row; standard error then says how
    many more the filters hold (see --limit)."""
    from monitor.store.listings import ItemSelection, count_selected, newest_items

    if since and until and since > until:
        raise click.BadParameter(f"{until} is before --since {since}", param_hint="--until")
    engine = read_only(config)
    selection = ItemSelection(relevant=relevant or None, topic=topic, lang=lang,
                              feed=_feed_id(engine, feed), published_since=since,
                              published_until=until, sort=sort)
    keys = LISTED_ITEM_KEYS + (("text",) if with_text else ())
    shown = 0

    def counted(rows):
        nonlocal shown
        for row in rows:
            shown += 1
            yield row

    rows = counted(picked(newest_items(engine, selection, limit=limit or None,
                                       text="full" if with_text else None), keys))
    if not as_json:
        click.echo(f"{'ID':>6} R {'SCORE':>5} {'PUBLISHED':<10} {'FEED':<18} TITLE")

    def render(r: dict) -> str:
        line = (f"{r['id']:>6} {'R' if r['relevant'] else '-'} {r['score']:>5g} "
                f"{_date_of(r):<10} {shorten(r['feed'] or 'corpus', 18):<18} "
                f"{shorten(r['title'], 80)}")
        return line + ("\n" + r["text"] + "\n" if with_text else "")

    print_rows(rows, as_json, render)
    total = count_selected(engine, selection) if limit and shown == limit else shown
    more = total - shown
    click.echo(f"{shown} of {total} items, {_SORT_WORDS[sort]}"
               + (f"; {more} more (--limit N shows more, --limit 0 all; or narrow with --since, "
                  "--until, --feed, --topic, --lang, --relevant)" if more else ""), err=True)


@items.command("search", help=f"""Full-text search of stored items' titles and texts, best
match first, each with a snippet, its matched words in bold on a terminal, else **like this**.

How a query reads (put it in quotes for the shell):

{SYNTAX}""")
@config_option
@click.argument("query", nargs=-1, required=True)
@click.option("--relevant", is_flag=True, help="Only relevant items.")
@click.option("--sort", type=click.Choice(("best", "published")), default="best",
              show_default=True, help="best: best match first (the title weighs more); "
                                      "published: newest publication first.")
@click.option("--limit", type=click.IntRange(min=1, max=LARGEST_ID), default=20,
              show_default=True, help="At most N items.")
@json_option()
def items_search(config, query: tuple[str, ...], relevant: bool, sort: str, limit: int,
                 as_json: bool) -> None:
    from monitor.store.listings import ItemSelection
    from monitor.store.search import best_matches, newest_matches
    from monitor.textsearch import marked, parse_query

    typed = " ".join(query)
    try:
        parsed = parse_query(typed)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    engine = read_only(config)
    marks = MARK if as_json else hit_marks()
    if sort == "best":
        found = best_matches(engine, parsed, relevant=relevant or None, limit=limit, mark=marks)
    else:
        found = newest_matches(engine, ItemSelection(relevant=relevant or None, sort="published"),
                               parsed, limit=limit)
        for item in found:
            item["rank"], item["snippet"] = None, marked(item.pop("text"), item.pop("hits"),
                                                         marks)
    if not found:
        click.echo(f"no item matches {typed}" + (" among the relevant ones" if relevant else "")
                   + "; `monitor items search --help` says how queries read", err=True)
        return
    print_rows(picked(found, LISTED_ITEM_KEYS + ("rank", "snippet")), as_json, lambda r: (
        f"{r['id']:>6} {'R' if r['relevant'] else '-'} "
        f"{'-' if r['rank'] is None else format(r['rank'], '.3g'):>9} "
        f"{shorten(r['feed'] or 'corpus', 18):<18} {shorten(r['title'], 70)}\n"
        f"{'':>16}{r['snippet']}"))


@items.command("show")
@config_option
@click.argument("item_id", type=click.IntRange(min=0, max=LARGEST_ID))
@click.option("--all", "all_rules", is_flag=True,
              help="Also the rules that did not fire, and why.")
@json_option("Print JSON.")
def items_show(config, item_id: int, all_rules: bool, as_json: bool) -> None:
    """One item: its text, why it was judged so (the rules that fired), every feed that
    brought it and its near-duplicates."""
    from monitor.cli.output import highlight
    from monitor.store.listings import copies_elsewhere, item_by_id, story_sources

    engine = read_only(config)
    item = item_by_id(engine, item_id)
    if item is None:
        raise click.ClickException(f"no item with id {item_id}; see `monitor items list`")
    # a corpus file's text starts with its own title line: it is classified as one text
    title = "" if item["text_source"] == "corpus" else item["title"]
    verdict = load_ruleset(config.settings.rules_file).classify(title, item["text"])
    sources = story_sources(engine, item)
    copies = copies_elsewhere(engine, item)
    if as_json:
        explanation = verdict.as_dict()
        del explanation["matches"]  # the item's own (stored) matches are shown
        explanation["rules"] = [r for r in explanation["rules"] if r["fired"] or all_rules]
        shown = next(picked([item], SHOWN_ITEM_KEYS))
        print_json_lines([{**shown, "explanation": explanation, "sources": sources,
                           "near_duplicates": copies}])
        return
    click.echo(item["title"])
    click.echo(f"url: {item['url'] or '-'}\nfeed: {item['feed'] or 'corpus'}"
               f"\npublished: {item['published'] or '-'}  fetched: {item['fetched_at']}"
               f"\nlanguage: {item['lang'] or '-'}  text from: {item['text_source']}"
               + (f" ({item['text_error']}: {item['text_error_message']})"
                  if item["text_error"] else ""))
    click.echo(f"verdict: {'RELEVANT' if item['relevant'] else 'not relevant'} "
               f"score={item['score']:g} topics={','.join(item['topics']) or '-'} "
               f"(rules {item['rules_version']}); corpus file: {item['corpus_file'] or '-'}")
    same = "" if verdict.version == item["rules_version"] else " (the rules changed since)"
    click.echo(f"why (current rules {verdict.version}{same}):")
    for line in verdict_lines(verdict, fired_only=not all_rules):
        click.echo(line)
    stored = item["matches"] or []
    click.echo(f"matches ({len(stored)}, as stored):")
    for field, text in (("title", title), ("body", item["text"])):
        labels = span_labels(stored, field)
        for snippet in highlight(text, list(labels), labels=labels)[:20]:
            click.echo(f"  [{field}] {snippet}")
    click.echo(f"sources ({len(sources) or 1}):")
    for source in sources or [{"feed": item["feed"], "seen_at": item["fetched_at"],
                               "url": item["url"]}]:
        click.echo(f"  {shorten(source['feed'] or 'corpus', 24):<24} "
                   f"{(source['seen_at'] or '')[:16]}  {source['url'] or '-'}")
    click.echo(f"near-duplicates ({len(copies)}):")
    for copy in copies:
        click.echo(f"  {copy['id']:>6} {copy['relation']:<14} "
                   f"{shorten(copy['feed'] or 'corpus', 18):<18} {shorten(copy['title'], 60)}")
    click.echo("\n" + item["text"])
