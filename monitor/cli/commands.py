"""The commands of the contract: init, run, classify, items, feeds, stats.

init and run write the database (and bring its schema up to date), once they have checked that
they may write it and the corpus folder (`open_storage`); items, feeds list and stats only read
it (`read_only`): they never create, migrate nor write it."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monitor.cli import cli, config_option, read_only, setup_logging
from monitor.cli.output import (
    LISTED_ITEM_KEYS,
    SHOWN_ITEM_KEYS,
    highlight,
    json_option,
    picked,
    print_json_lines,
    print_rows,
    shorten,
    verdict_lines,
)
from monitor.rules import load_ruleset, split_document
from monitor.settings import describe_duration
from monitor.store.engine import LARGEST_ID, backend_name


@cli.command()
@config_option
def init(config) -> None:
    """Create or upgrade the database and import the corpus folder's files (idempotent)."""
    from monitor.worker.initdb import initialise
    from monitor.worker.writable import open_storage

    settings = config.settings
    report = initialise(settings, open_storage(settings), load_ruleset(settings.rules_file))
    click.echo(f"database ready: {report.database}")
    click.echo(f"feeds configured: {report.feeds}")
    click.echo(f"corpus files imported: {report.imported} "
               f"(already present: {report.already_present}) from {settings.corpus_dir}")


@cli.command()
@config_option
@click.option("--once", is_flag=True, help="Poll every enabled feed once, then exit.")
@click.option("--workers", "processes", type=click.IntRange(min=1, max=64), default=1,
              show_default=True,
              help="Worker processes to start (above 1: PostgreSQL only); each polls "
                   "schedule.workers feeds at once.")
@click.option("--parent-pid", type=int, default=None, hidden=True,
              help="Set by --workers for its workers: stop when this process is gone.")
@click.option("--strict", is_flag=True,
              help="With --once: exit 1 when any feed failed (without it: when every feed "
                   "failed, or anything could not be stored).")
def run(config, once: bool, processes: int, parent_pid: int | None, strict: bool) -> None:
    """Run the daemon: poll due feeds on schedule until SIGTERM/SIGINT."""
    from monitor.worker.cpupool import start_fork_server
    from monitor.worker.daemon import run_daemon, run_once
    from monitor.worker.initdb import initialise
    from monitor.worker.writable import open_storage

    settings = config.settings
    if strict and not once:
        raise click.UsageError("--strict sets the exit status of --once; the daemon runs on")
    if processes > 1:
        if once:
            raise click.UsageError("--once polls with one process; --workers is for the daemon")
        if backend_name(settings.database_url) == "sqlite":
            raise click.UsageError(
                f"--workers {processes} needs PostgreSQL: SQLite serves one worker process "
                "(it polls schedule.workers feeds at once). Set database_url or "
                "MONITOR_DATABASE_URL to postgresql+psycopg://user@host/db, or drop --workers.")
    setup_logging(settings.log_level)
    if settings.alerts:
        from monitor.worker.notify import check_addresses

        check_addresses(settings.alerts, str(settings.config_path))
    if processes <= 1:
        start_fork_server()  # it imports the extraction code while the database is prepared
    initialise(settings, open_storage(settings), load_ruleset(settings.rules_file))
    if once:
        report = run_once(settings)
        click.echo(f"polled {report.feeds} feeds in {report.seconds:.2f}s "
                   f"(set-up {report.setup_seconds:.2f}s): {report.ok} ok, "
                   f"{report.errors} failed; {report.new_items} new items, "
                   f"{report.relevant_items} relevant"
                   + (f"; {report.not_stored} could not be stored (storage-error)"
                      if report.not_stored else ""))
        if (failure := report.failure(strict=strict)) is not None:
            click.echo(f"monitor: {failure}", err=True)
            raise SystemExit(1)
        return
    if processes > 1:
        from monitor.worker.supervisor import run_workers

        raise SystemExit(run_workers(settings, processes))
    run_daemon(settings, parent_pid=parent_pid)


@cli.command()
@config_option
@click.argument("paths", nargs=-1, required=True)
@json_option()
def classify(config, paths: tuple[str, ...], as_json: bool) -> None:
    """Apply the rules to text files (or - for standard input)."""
    rules = load_ruleset(config.settings.rules_file)

    def verdicts():
        for path in paths:
            if path == "-":
                text = sys.stdin.read()
            else:
                try:
                    text = Path(path).read_text(encoding="utf-8", errors="replace")
                except OSError as exc:
                    raise click.BadParameter(f"cannot read {path}: {exc.strerror}") from exc
            verdict = rules.classify(*split_document(text))
            yield {"path": path, "relevant": verdict.relevant, "score": verdict.score,
                   "topics": list(verdict.topics), "matches": verdict.term_counts()}

    print_rows(verdicts(), as_json, lambda r: (
        f"{r['path']}: {'relevant' if r['relevant'] else 'not relevant'} score={r['score']:g} "
        f"topics={','.join(r['topics']) or '-'} terms="
        + ", ".join(f"{m['term']}×{m['count']}" for m in r["matches"][:8])))


@cli.group()
def items() -> None:
    """Stored items."""


@items.command("list")
@config_option
@click.option("--relevant", is_flag=True, help="Only relevant items.")
@click.option("--limit", type=click.IntRange(min=1, max=LARGEST_ID), default=None,
              help="At most N items.")
@click.option("--text", "with_text", is_flag=True, help="Include the stored text.")
@json_option()
def items_list(config, relevant: bool, limit: int | None, with_text: bool, as_json: bool) -> None:
    """Stored items, newest first."""
    from monitor.store.listings import ItemSelection, newest_items

    rows = picked(newest_items(read_only(config), ItemSelection(relevant=relevant or None),
                               limit=limit, text="full" if with_text else None),
                  LISTED_ITEM_KEYS + (("text",) if with_text else ()))

    def render(r: dict) -> str:
        mark = "R" if r["relevant"] else "-"
        line = (f"{r['id']:>6} {mark} {r['score']:>4g} {shorten(r['feed'] or 'corpus', 18):<18} "
                f"{shorten(r['title'], 80)}")
        return line + ("\n" + r["text"] + "\n" if with_text else "")

    print_rows(rows, as_json, render)


@items.command("search")
@config_option
@click.argument("query", nargs=-1, required=True)
@click.option("--relevant", is_flag=True, help="Only relevant items.")
@click.option("--limit", type=click.IntRange(min=1, max=LARGEST_ID), default=20,
              show_default=True, help="At most N items.")
@json_option()
def items_search(config, query: tuple[str, ...], relevant: bool, limit: int,
                 as_json: bool) -> None:
    """Full-text search of stored items' titles and texts, best match first, with snippets.

    Words must all appear (case and accents do not matter), "quotes" keep a phrase, OR offers
    a choice, a leading - excludes: monitor items search '"protection des données" OR cndp'.
    """
    from monitor.store.search import best_matches
    from monitor.textsearch import parse_query

    try:
        parsed = parse_query(" ".join(query))
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    rows = picked(best_matches(read_only(config), parsed, relevant=relevant or None,
                               limit=limit), LISTED_ITEM_KEYS + ("rank", "snippet"))
    print_rows(rows, as_json, lambda r: (
        f"{r['id']:>6} {'R' if r['relevant'] else '-'} {r['rank']:>9.3g} "
        f"{shorten(r['feed'] or 'corpus', 18):<18} {shorten(r['title'], 70)}\n"
        f"{'':>16}{r['snippet']}"))


@items.command("show")
@config_option
@click.argument("item_id", type=click.IntRange(min=0, max=LARGEST_ID))
@json_option("Print JSON.")
def items_show(config, item_id: int, as_json: bool) -> None:
    """One item with its text and why it was judged so."""
    from monitor.cli.output import span_labels
    from monitor.store.listings import item_by_id

    item = item_by_id(read_only(config), item_id)
    if item is None:
        raise click.ClickException(f"no item with id {item_id}; see `monitor items list`")
    if as_json:
        print_json_lines(picked([item], SHOWN_ITEM_KEYS))
        return
    # a corpus file's text starts with its own title line: it is classified as one text
    title = "" if item["text_source"] == "corpus" else item["title"]
    verdict = load_ruleset(config.settings.rules_file).classify(title, item["text"])
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
    for line in verdict_lines(verdict):
        click.echo(line)
    stored = item["matches"] or []
    click.echo(f"matches ({len(stored)}, as stored):")
    for field, text in (("title", title), ("body", item["text"])):
        labels = span_labels(stored, field)
        for snippet in highlight(text, list(labels), labels=labels)[:20]:
            click.echo(f"  [{field}] {snippet}")
    click.echo("\n" + item["text"])


@cli.group()
def feeds() -> None:
    """Configured feeds and their health."""


@feeds.command("list")
@config_option
@json_option()
def feeds_list(config, as_json: bool) -> None:
    """Feeds with health: last poll, status, error streak, unhealthy, stopped (gone) or moved,
    the interval in effect (configured, adaptive or default), items, relevant items."""
    from monitor.settings import load_feeds
    from monitor.store.health import feed_health

    configured = load_feeds(config.settings.feeds_file)
    engine = read_only(config)

    def line(r: dict) -> str:
        every = describe_duration(r["interval"]).replace(" ", "")
        notes = [f"{'on ' if r['enabled'] else 'off'} {shorten(r['name'], 24):<24} "
                 f"{(r['status'] or 'never polled'):<16} streak={r['error_streak']} "
                 f"every={every}({r['interval_source']}) "
                 f"items={r['items']} relevant={r['relevant_items']} "
                 f"last={r['last_poll'] or '-'}  {r['url']}"]
        if r["unhealthy"]:
            notes.append(f"UNHEALTHY: {r['error_streak']} failures in a row")
        if r["disabled_reason"]:
            notes.append(f"stopped: {r['disabled_reason']} (change its entry in feeds.yaml "
                         "to poll it again)")
        if r["fetch_url"]:
            notes.append(f"moved to {r['fetch_url']}")
        if r["last_error"]:
            notes.append(f"last error: {r['last_error']}")
        return f"{r['id'] if r['id'] is not None else '-':>4} " + "\n       ".join(notes)

    print_rows(feed_health(engine, config.settings.schedule, configured), as_json, line)


@cli.command()
@config_option
@json_option("Print JSON.")
def stats(config, as_json: bool) -> None:
    """Totals: feeds, items, relevant items, polls, errors."""
    from monitor.store.totals import totals

    def lines(result: dict) -> str:
        shown = []
        for key, value in result.items():
            if isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
            shown.append(f"{key.replace('_', ' ')}: {value}")
        return "\n".join(shown)

    print_rows([totals(read_only(config))], as_json, lines)
