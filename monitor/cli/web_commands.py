"""The inspecting commands: serve (the web inspector), export, digest. Thin: parse, call one
library function. They read the database only (`read_only`); the inspector writes labels when
it runs with a token."""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import socket
import sys
from datetime import UTC, date, datetime

import click

from monitor.cli import cli, config_option, read_only
from monitor.cli.logsetup import setup_logging
from monitor.cli.output import write_output
from monitor.cli.progress import ProgressLine, quiet_option

_TOKEN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,200}$")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def http_address(host: str, port: int) -> str:
    """``http://host:port/``, an IPv6 address in brackets (``http://[::1]:8080/``)."""
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@cli.command()
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to listen on.")
@click.option("--token", envvar="MONITOR_WEB_TOKEN", default=None,
              help="Require this token (16+ characters; also $MONITOR_WEB_TOKEN): "
                   "'Authorization: Bearer TOKEN', or open a page once with ?token=TOKEN.")
@click.option("--public", is_flag=True,
              help="Allow a non-loopback --host without a token (anyone who can reach it reads).")
def serve(config, host: str, port: int, token: str | None, public: bool) -> None:
    """Serve the web inspector: items, feeds, Atom feed, /healthz, /metrics; read-only, but for
    the label buttons of an item's page when it runs with --token."""
    import uvicorn

    from monitor.web import create_app
    from monitor.web.auth import TokenRedaction

    if token is not None and not _TOKEN.match(token):
        raise click.BadParameter("use 16 to 200 letters, digits or ._~+/=- "
                                 "(e.g. from `openssl rand -hex 24`)", param_hint="--token")
    if not is_loopback(host) and not token and not public:
        raise click.UsageError(f"--host {host} is not a loopback address: set --token (or "
                               "MONITOR_WEB_TOKEN) to protect the inspector, or pass --public")
    settings = config.settings
    setup_logging(settings.log_level)
    app = create_app(settings, engine=read_only(config), token=token, host=host)
    logging.getLogger("uvicorn.access").addFilter(TokenRedaction())
    listening = _listening_socket(host, port)  # a busy port fails here, before the address
    click.echo(f"monitor inspector on {http_address(host, port)} ("
               f"{'token required; labels can be recorded' if token else 'read-only'}); "
               "Ctrl-C stops it", err=True)
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level=settings.log_level,
                                           server_header=False))
    server.run(sockets=[listening])


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, as uvicorn would bind it; a `ClickException` (one line,
    exit 1) when the address is taken or cannot be used."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"cannot listen on {http_address(host, port)}: the port {port} is in use (another "
                "monitor serve?); stop that program or choose another --port") from None
        raise click.ClickException(f"cannot listen on {http_address(host, port)}: "
                                   f"{exc.strerror}; check --host and --port") from None
    listening.set_inheritable(True)
    return listening


@cli.command()
@config_option
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), required=True,
              help="jsonl: one JSON object per line; csv: a header line, then one record each.")
@click.option("--relevant", is_flag=True, help="Only relevant items.")
@click.option("--since", default=None, metavar="DATE",
              help="Only items kept since DATE (YYYY-MM-DD, UTC, or an ISO 8601 time).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write to this file instead of standard output.")
@quiet_option
def export(config, fmt: str, relevant: bool, since: str | None, output: str | None,
           quiet: bool) -> None:
    """Export stored items (oldest first) as JSON Lines or CSV, streamed in constant memory;
    a terminal shows how many are written so far."""
    from monitor.report.export import export_items, parse_since
    from monitor.store.listings import items_to_export

    try:
        moment = parse_since(since) if since else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    rows = items_to_export(read_only(config), relevant=relevant, since=moment)
    # items written to the terminal would scroll through the progress line: none then
    quiet = quiet or (output is None and sys.stdout.isatty())
    with ProgressLine("exporting items", quiet=quiet) as progress:
        count = write_output(output, lambda out: export_items(progress.counting(rows), out,
                                                              fmt=fmt))
    click.echo(f"exported {count} items", err=True)


@cli.command()
@config_option
@click.option("--date", "day", default=None, metavar="YYYY-MM-DD",
              help="The day (UTC) the items were kept; default: today.")
@click.option("--format", "fmt", type=click.Choice(["md", "html"]), default="md",
              show_default=True, help="Markdown or a standalone HTML page.")
def digest(config, day: str | None, fmt: str) -> None:
    """The day's relevant items grouped by topic, with links (Markdown or HTML)."""
    from monitor.report.digest import build_digest, render_html, render_markdown
    from monitor.store.listings import relevant_items_kept_on

    try:
        when = date.fromisoformat(day) if day else datetime.now(UTC).date()
    except ValueError:
        raise click.BadParameter(f"{day!r} is not a date; write YYYY-MM-DD",
                                 param_hint="--date") from None
    result = build_digest(relevant_items_kept_on(read_only(config), when), when)
    click.echo(render_html(result) if fmt == "html" else render_markdown(result), nl=False)
