"""The alerts commands: alerts list, alerts test, alerts send. Thin: each parses its options and
calls one library function (`alert_figures` + `alert_status`, `notify.deliver`, `send_due`).
Addresses are only ever shown masked."""

from __future__ import annotations

import click

from monitor.alerts.status import alert_status, failing_after
from monitor.cli import cli, config_option, read_only
from monitor.cli.logsetup import setup_logging
from monitor.cli.output import json_option, print_rows


@cli.group()
def alerts() -> None:
    """Alerts: who hears of relevant items (e-mail, chat, push, webhooks), and how it goes."""


@alerts.command("list")
@config_option
@json_option()
def alerts_list(config, as_json: bool) -> None:
    """Each alert: its addresses (masked), filters, pending, sent and failed entries, the last
    error."""
    from monitor.store.outbox import alert_figures

    settings = config.settings
    figures = alert_figures(read_only(config), failing_after(settings.alerts))

    def line(row: dict) -> str:
        filters = " ".join(
            f"{key}={','.join(value) if isinstance(value, list) else value}"
            for key, value in row["filters"].items() if value not in ([], None))
        lines = [f"{row['name']} ({row['mode']}{' at ' + row['at'] if row['at'] else ''}) "
                 f"pending={row['pending']} sent={row['sent']} failed={row['failed']} "
                 f"resent={row['resends']}" + ("  FAILING" if row["failing"] else ""),
                 f"  to: {', '.join(row['to'])}", f"  filters: {filters or 'none'}"]
        if row["last_error"]:
            lines.append(f"  last error: {row['last_error']}")
        return "\n".join(lines)

    if not settings.alerts and not as_json:
        click.echo(f"no alert is configured (alerts: in {settings.config_path})")
    print_rows(alert_status(settings.alerts, figures), as_json, line)


@alerts.command("test")
@config_option
@click.argument("name")
def alerts_test(config, name: str) -> None:
    """Send a test message to every address of alert NAME now."""
    from monitor.alerts.masking import masked, scrub
    from monitor.alerts.message import check_message
    from monitor.worker.notify import check_addresses, deliver

    settings = config.settings
    alert = next((alert for alert in settings.alerts if alert.name == name), None)
    if alert is None:
        known = ", ".join(alert.name for alert in settings.alerts) or "none is configured"
        raise click.UsageError(f"no alert named {name!r} (alerts: {known})")
    check_addresses((alert,), str(settings.config_path))
    failed = 0
    for target in alert.targets:
        error = deliver(target.url, check_message(alert.name))
        if error is None:
            click.echo(f"sent to {masked(target.written)}")
        else:
            failed += 1
            click.echo(f"FAILED {masked(target.written)}: "
                       f"{scrub(error, [t.url for t in alert.targets])}", err=True)
    if failed:
        raise click.ClickException(f"{failed} of {len(alert.targets)} addresses did not take "
                                   "the test message")


@alerts.command("send")
@config_option
def alerts_send(config) -> None:
    """Send the due alert entries now, once (for cron; `monitor run` sends on its own)."""
    from monitor.worker.leases import take_over_dead_leases, worker_identity
    from monitor.worker.notify import check_addresses
    from monitor.worker.sender import send_due
    from monitor.worker.writable import open_storage

    settings = config.settings
    setup_logging(settings.log_level)
    check_addresses(settings.alerts, str(settings.config_path))
    engine = open_storage(settings)
    take_over_dead_leases(engine)
    report = send_due(engine, settings.alerts, owner=worker_identity(),
                      lease=settings.schedule.lease, base_url=settings.web.base_url)
    click.echo(f"{report.sent} entries announced in {report.messages} messages"
               + (f"; {report.failed} not sent, tried again later" if report.failed else ""))
    if report.failed:
        raise click.ClickException("; ".join(report.errors))
