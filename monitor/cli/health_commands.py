"""`monitor healthcheck`: the containers' health check of the workers. Thin: reads the workers'
heartbeats (`worker/heartbeat.py`), says so in one line, exits 0 when healthy, else 1. Hidden
from `monitor --help`, being no command of the contract; the README's Containers section has
it."""

from __future__ import annotations

import click

from monitor.cli import cli, config_option


@cli.command(hidden=True)
@config_option
def healthcheck(config) -> None:
    """Exit 0 when the workers of this configuration on this machine tick (each ticked within
    the last three schedule.tick, 30 s at least), else 1: the containers' health check."""
    from monitor.worker.heartbeat import heartbeat_folder, stale_after, worker_health

    settings = config.settings
    health = worker_health(heartbeat_folder(settings.config_path),
                           stale_after(settings.schedule.tick))
    if not health.healthy:
        raise click.ClickException(f"unhealthy: {health.message}")
    click.echo(f"healthy: {health.message}")
