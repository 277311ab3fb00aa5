"""The commands of the contract: init, run, items, feeds, stats (classify: `classify_command`).

init and run write the database (and bring its schema up to date), once they have checked that
they may write it and the corpus folder (`open_storage`); items, feeds list and stats only read
it (`read_only`): they never create, migrate nor write it."""

from __future__ import annotations

import click

from monitor.cli import cli, config_option, read_only
from monitor.cli.logsetup import setup_logging
from monitor.cli.output import json_option, print_rows, shorten
from monitor.cli.progress import ProgressLine, quiet_option
from monitor.rules import load_ruleset
from monitor.settings import describe_duration, load_feeds
from monitor.store.engine import backend_name
from monitor.store.feeds import lists_a_feed_never_fetched


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
    if report.settled.moved:
        click.echo(f"corpus files moved as the stored verdicts say: {report.settled.withdrawn} "
                   f"to withdrawn/, {report.settled.restored} back")


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
@quiet_option
def run(config, once: bool, processes: int, parent_pid: int | None, strict: bool,
        quiet: bool) -> None:
    """Run the daemon: poll due feeds on schedule until SIGTERM/SIGINT. With --once, a
    terminal shows the progress (feeds polled, pages fetched, items so far)."""
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
    engine = open_storage(settings)
    specs = load_feeds(settings.feeds_file) if once else None
    if specs is not None and lists_a_feed_never_fetched(engine, specs):
        # Its entries are all news: the extraction processes' server starts now, its imports
        # overlapping those below and the set-up, not the cycle (a third of a second).
        from monitor.worker.forkstart import start_fork_server

        start_fork_server()
    from monitor.worker.collector import settle_after_startup
    from monitor.worker.daemon import run_daemon, run_once
    from monitor.worker.initdb import initialise

    initialise(settings, engine, load_ruleset(settings.rules_file))
    settle_after_startup()  # what is imported and set up by now lives as long as the process
    if specs is not None:
        with ProgressLine("polling feeds", 0, quiet=quiet) as progress:
            # No line shown (not a terminal): no counting at every poll for nobody.
            report = run_once(settings, specs=specs, progress=(lambda counts: progress.update(
                counts.polled, counts.feeds, pages=counts.pages, new_items=counts.new_items,
                relevant=counts.relevant_items)) if progress.shown else None)
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


@cli.group()
def items() -> None:
    """Stored items."""


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
