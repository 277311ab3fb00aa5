"""feeds check, add, remove, disable, enable, poll, import-opml, export-opml: look at a feed,
poll one now, edit feeds.yaml (its comments and order kept; a running daemon picks the edit
up)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import click
from pydantic import ValidationError

from monitor.cli import config_option
from monitor.cli.commands import feeds
from monitor.cli.output import json_option, print_json_lines
from monitor.cli.progress import ProgressLine, quiet_option
from monitor.configmodel import first_problem
from monitor.errors import NotAFeed
from monitor.settings import FeedSpec, load_feeds


@feeds.command("check")
@config_option
@click.argument("url")
@json_option("Print one JSON object.")
def feeds_check(config, url: str, as_json: bool) -> None:
    """Fetch URL once and parse it, storing nothing: title, format, entries, newest entry,
    encoding, warnings, HTTP validators and caching hints; for an HTML page, the feeds it
    advertises. Exits 0 for a usable feed, 1 otherwise (with --json, the object then says
    why: ``reason`` and ``problem``)."""
    from monitor.errors import FetchError
    from monitor.worker.probe import check_url

    try:
        check = check_url(url, config.settings.http)
    except FetchError as exc:
        if not as_json:
            raise
        print_json_lines([{"url": url, "is_feed": False, "reason": exc.reason,
                           "problem": exc.message}])
        raise SystemExit(1) from None
    report = _check_report(check)
    if as_json:
        print_json_lines([report])
    else:
        _print_check(report)
    if check.feed is None:
        hint = ("; the page advertises feeds: check one of them, or `monitor feeds add` the "
                "page to take its main feed" if check.advertised else "")
        raise click.ClickException(f"{check.problem}{hint}")


@feeds.command("add")
@config_option
@click.argument("url")
@click.option("--name", help="Feed name (default: the feed's title).")
@click.option("--lang", help="Language code: fr, ar, en or another two-letter code.")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option("--interval", help="Poll interval, e.g. 15m or 2h (default: schedule's).")
@click.option("--all", "take_all", is_flag=True,
              help="Add every feed the page advertises (comments feeds aside), not only the "
                   "first.")
def feeds_add(config, url: str, name: str | None, lang: str | None, tags: tuple[str, ...],
              interval: str | None, take_all: bool) -> None:
    """Add a feed to feeds.yaml. URL may be the feed or a site's page: its feeds are found by
    autodiscovery, else at the usual feed URLs; the chosen feed must parse. Refuses a URL
    already listed (exit 2)."""
    from monitor.feeds.feedsfile import add_feeds, listed_feed
    from monitor.worker.probe import find_feeds

    if take_all and name:
        raise click.UsageError("--name names one feed; with --all each feed takes its title")
    options = {"lang": lang, "interval": interval, "tags": tags}
    _feed_spec({"url": url, "name": name or url, **options}, "options")  # before any fetch
    feeds_file = config.settings.feeds_file
    already = listed_feed(feeds_file, url)
    if already is not None:
        raise click.UsageError(f"{url} is already in {feeds_file} as {already.name!r} "
                               f"({already.url}); nothing was changed")
    found = find_feeds(url, config.settings.http, take_all=take_all)
    specs = [_feed_spec({"url": check.url, "name": name or check.feed.title or _host(check.url),
                         **options}, check.url) for check in found.feeds]
    result = add_feeds(feeds_file, specs)
    for spec in result.added:
        click.echo(f"added {spec.url} as {spec.name!r} ({found.how})")
    for spec in result.already_listed:
        click.echo(f"already listed, skipped: {spec.url}")
    for link in found.left_aside:
        kind = "comments feed" if link.comments else "also advertised"
        click.echo(f"  {kind}: {link.url}" + (f"  ({link.title})" if link.title else ""))
    for rejected in found.rejected:
        click.echo(f"  not usable ({rejected.reason}): {rejected.url}")
    if not result.added:
        raise click.UsageError(f"nothing added: the feed found is already in {feeds_file}")


@feeds.command("remove")
@config_option
@click.argument("feed", metavar="NAME|URL")
def feeds_remove(config, feed: str) -> None:
    """Take a feed out of feeds.yaml. Its stored items stay, and so does its row (shown as
    retired by `feeds list`); adding it back continues it."""
    from monitor.feeds.feedsfile import find_listed, remove_feed

    spec = find_listed(config.settings.feeds_file, feed)
    remove_feed(config.settings.feeds_file, spec.url)
    click.echo(f"removed {spec.name!r} ({spec.url}) from {config.settings.feeds_file}")


@feeds.command("disable")
@config_option
@click.argument("feed", metavar="NAME|URL")
def feeds_disable(config, feed: str) -> None:
    """Stop polling a feed, keeping it in feeds.yaml (``enabled: false``)."""
    _set_enabled(config, feed, False)


@feeds.command("enable")
@config_option
@click.argument("feed", metavar="NAME|URL")
def feeds_enable(config, feed: str) -> None:
    """Poll a disabled feed again (its ``enabled: false`` taken out of feeds.yaml)."""
    _set_enabled(config, feed, True)


def _set_enabled(config, feed: str, enabled: bool) -> None:
    from monitor.feeds.feedsfile import find_listed, set_enabled

    spec = find_listed(config.settings.feeds_file, feed)
    word = "enabled" if enabled else "disabled"
    if spec.enabled == enabled:
        click.echo(f"{spec.name!r} ({spec.url}) is already {word}; nothing was changed")
        return
    set_enabled(config.settings.feeds_file, spec.url, enabled)
    click.echo(f"{word} {spec.name!r} ({spec.url}) in {config.settings.feeds_file}")


@feeds.command("poll")
@config_option
@click.argument("feed", metavar="NAME|URL")
@json_option("Print the poll's outcome as one JSON object.")
def feeds_poll(config, feed: str, as_json: bool) -> None:
    """Poll one feed of feeds.yaml now, whatever its schedule, and store what it brings (as
    the daemon would; a running daemon is not disturbed). Exits 1 when the poll failed."""
    from monitor.feeds.feedsfile import find_listed
    from monitor.worker import eventloop
    from monitor.worker.forkstart import start_fork_server
    from monitor.worker.pollnow import poll_feed_now
    from monitor.worker.writable import open_storage

    settings = config.settings
    spec = find_listed(settings.feeds_file, feed)
    start_fork_server()
    open_storage(settings)  # may it write the database and the corpus folder?
    polled = eventloop.run(poll_feed_now(settings, spec.url))
    record = polled.record
    outcome = {"feed": spec.name, "url": spec.url, "status": record.error_reason or record.status,
               "http_status": record.http_status, "entries": record.entries,
               "pages": polled.pages, "new_items": record.new_items,
               "relevant_items": record.relevant_items, "page_errors": record.page_errors,
               "error": record.error_message, "next_due": record.next_due.isoformat()}
    if as_json:
        print_json_lines([outcome])
    else:
        click.echo(f"{spec.name}: {outcome['status']} (HTTP {record.http_status or '-'}); "
                   f"{record.entries} entries, {polled.pages} pages fetched, "
                   f"{record.new_items} new items, {record.relevant_items} relevant, "
                   f"{record.page_errors} page errors; next poll {record.next_due:%Y-%m-%d %H:%M} "
                   "UTC")
    if record.status == "error":
        if not as_json:
            click.echo(f"monitor: {record.error_message}", err=True)
        raise SystemExit(1)


@feeds.command("import-opml")
@config_option
@click.argument("opml_file", type=click.Path(exists=True, dir_okay=False))
@quiet_option
def feeds_import_opml(config, opml_file: str, quiet: bool) -> None:
    """Add every feed of an OPML file (a feed reader's export) not yet in feeds.yaml; folders
    become tags. Reports the feeds added, skipped (already listed) and invalid (with the
    line)."""
    from monitor.feeds.feedsfile import add_feeds
    from monitor.feeds.opml import read_opml

    outlines = read_opml(Path(opml_file).read_bytes(), source=opml_file)
    specs, invalid = [], []
    with ProgressLine("reading outlines", len(outlines.feeds), quiet=quiet) as progress:
        for done, outline in enumerate(outlines.feeds, 1):
            entry = {"url": outline.url, "name": outline.title or _host(outline.url),
                     "lang": outline.lang, "interval": outline.interval, "tags": outline.tags,
                     "enabled": outline.enabled}
            try:
                specs.append(FeedSpec.model_validate(entry))
            except ValidationError as exc:
                invalid.append((outline.line, _first_error(exc)))
            progress.update(done, valid=len(specs), invalid=len(invalid))
    invalid += [(problem.line, problem.problem) for problem in outlines.problems]
    result = add_feeds(config.settings.feeds_file, specs)
    for spec in result.added:
        click.echo(f"added {spec.url} as {spec.name!r}")
    for spec in result.already_listed:
        click.echo(f"skipped (already listed): {spec.url}")
    for line, problem in sorted(invalid):
        click.echo(f"invalid: {opml_file}, line {line}: {problem}")
    click.echo(f"{len(result.added)} added, {len(result.already_listed)} skipped, "
               f"{len(invalid)} invalid; feeds file: {config.settings.feeds_file}")


@feeds.command("export-opml")
@config_option
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file (default: standard output).")
def feeds_export_opml(config, output: str | None) -> None:
    """The configured feeds as OPML 2.0, for a feed reader: one folder per first tag, every
    tag in `category`, the language in `language`."""
    from monitor.feeds.opml import write_opml

    document = write_opml(load_feeds(config.settings.feeds_file), title="monitor feeds",
                          created=datetime.now(UTC))
    if output is None:
        click.echo(document.decode("utf-8"), nl=False)
    else:
        Path(output).write_bytes(document)


def _feed_spec(entry: dict, where: str) -> FeedSpec:
    try:
        return FeedSpec.model_validate({k: v for k, v in entry.items() if v not in (None, ())})
    except ValidationError as exc:
        raise click.UsageError(f"{where}: {_first_error(exc)}") from None


def _first_error(exc: ValidationError) -> str:
    problem = first_problem(exc, FeedSpec)
    return f"{'.'.join(map(str, problem.loc))}: {problem.message}"


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


def _check_report(check) -> dict:
    feed = check.feed
    newest = check.newest
    warnings = [feed.warning] if feed and feed.warning else []
    if feed is not None and not feed.entries:
        warnings.append("no entries")
    if feed is not None:
        unusable = sum(1 for entry in feed.entries if entry.link is None)
        if unusable:
            warnings.append(f"{unusable} entries without a usable link (they will be skipped)")
    if check.over_feed_cap:
        warnings.append(f"{check.size} bytes: over http.max_feed_bytes, the daemon will refuse "
                        "it; raise the cap")
    return {
        "url": check.url, "final_url": check.final_url, "status": check.status,
        "content_type": check.content_type, "bytes": check.size, "is_feed": feed is not None,
        "title": feed.title if feed else None, "version": feed.version if feed else None,
        "entries": len(feed.entries) if feed else 0,
        "newest_entry": newest.isoformat() if newest else None,
        "encoding": feed.encoding if feed else None, "warnings": warnings,
        "reason": None if feed else NotAFeed.reason, "problem": check.problem,
        "etag": check.etag, "last_modified": check.last_modified,
        "conditional_get": bool(check.etag or check.last_modified),
        "cache_control": check.cache_control, "expires": check.expires,
        "ttl_minutes": feed.ttl_minutes if feed else None,
        "advertised_feeds": [{"url": link.url, "type": link.type, "title": link.title,
                              "comments": link.comments} for link in check.advertised],
    }


def _print_check(report: dict) -> None:
    moved = f" -> {report['final_url']}" if report["final_url"] != report["url"] else ""
    click.echo(f"{report['url']}{moved}: HTTP {report['status']}, "
               f"{report['content_type'] or 'no content type'}, {report['bytes']} bytes")
    if report["is_feed"]:
        click.echo(f"feed: {report['title'] or '(no title)'} ({report['version']}, "
                   f"encoding {report['encoding'] or '-'})")
        click.echo(f"entries: {report['entries']}, newest {report['newest_entry'] or '-'}")
    validators = [name for name in ("etag", "last_modified") if report[name]]
    click.echo("conditional GET: " + (f"possible ({', '.join(validators)})" if validators
                                      else "not possible (no ETag nor Last-Modified)"))
    hints = [f"{key}={report[key]}" for key in ("cache_control", "expires", "ttl_minutes")
             if report[key]]
    click.echo(f"caching hints: {', '.join(hints) or 'none'}")
    for warning in report["warnings"]:
        click.echo(f"warning: {warning}")
    for link in report["advertised_feeds"]:
        mark = " (comments)" if link["comments"] else ""
        click.echo(f"advertised {link['type']} feed{mark}: {link['url']}"
                   + (f"  {link['title']}" if link["title"] else ""))
