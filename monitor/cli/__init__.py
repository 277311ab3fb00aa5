"""The `monitor` command line. Thin: each command parses options and calls one library function.

Exit status: 0 success; 2 a usage or configuration error (the message names the file, line and
key); 1 any other failure (the message says what to do), a database failure included (the
store's `StorageError`). Listings print JSON Lines with --json (`output.py`) and read the
database without writing it (`read_only`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

# monitor uses no pydantic plugin, and looking for them reads the metadata of every installed
# package at each start (~10 ms of a short command); set this variable to anything else (an
# empty value, say) to have them looked for.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import click  # noqa: E402

from monitor.configpaths import rules_file_named, settings_file  # noqa: E402
from monitor.errors import ConfigError, MonitorError  # noqa: E402
from monitor.yamlfile import read_yaml  # noqa: E402

if TYPE_CHECKING:  # the database code is loaded by the commands that open one, not at start-up
    from pathlib import Path

    from monitor.settings import Settings
    from monitor.store.engine import Engine

CONFIG_HELP = "monitor.yaml to use (default: $MONITOR_CONFIG, else ./config/monitor.yaml)."


def config_option(command: Callable) -> Callable:
    """--config on every command (also accepted before the command name)."""

    @click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
                  help=CONFIG_HELP)
    @click.pass_context
    @wraps(command)
    def wrapper(ctx: click.Context, config_path: str | None, *args: Any, **kwargs: Any) -> Any:
        path = config_path or (ctx.obj or {}).get("config_path")
        return ctx.invoke(command, _ConfigHandle(path), *args, **kwargs)

    return wrapper


class _ConfigHandle:
    """Loads the settings when a command first needs them."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            from monitor.settings import load_settings

            self._settings = load_settings(self._config_file())
        return self._settings

    @property
    def rules_file(self) -> Path:
        """The rules file, for the commands that need nothing else from monitor.yaml: its
        ``rules_file`` read alone, without loading the settings' models (pydantic, a tenth of
        a second of a short command); an unusual value is left to the whole file's check."""
        if self._settings is None:
            found = rules_file_named(read_yaml(self._config_file()))
            if found is not None:
                return found
        return self.settings.rules_file

    def _config_file(self) -> Path:
        path = settings_file(self.path, os.environ)
        if not path.exists():
            given = ("--config" if self.path else
                     "$MONITOR_CONFIG" if os.environ.get("MONITOR_CONFIG") else None)
            raise ConfigError(
                (f"{path} (given by {given}) does not exist" if given else
                 f"no configuration file: {path} (the default) does not exist")
                + "; give monitor.yaml's path with --config PATH or the environment "
                "variable MONITOR_CONFIG, or run monitor in the folder holding "
                "config/monitor.yaml")
        return path


def read_only(config: _ConfigHandle) -> Engine:
    """The database of a listing command: read only, its schema this monitor's (else a
    StorageError saying to run `monitor init`); nothing is created, migrated or written."""
    from monitor.store.engine import open_read_only

    return open_read_only(config.settings.database_url)


# The modules defining each command (a group's subcommands may come from several). A command's
# modules are imported when it runs: `monitor classify` loads neither the database code nor the
# web server's (0.3 s of a short run). Listing them (--help, completing a command name) imports
# them all, as before.
_COMMAND_MODULES = {
    "alerts": ("alert_commands",),
    "classify": ("classify_command",),
    "digest": ("web_commands",),
    "export": ("web_commands",),
    "feeds": ("commands", "feeds_commands"),
    "healthcheck": ("health_commands",),
    "init": ("commands",),
    "items": ("commands", "items_commands", "label_commands"),
    "labels": ("label_commands",),
    "reclassify": ("rules_commands",),
    "rules": ("rules_commands",),
    "run": ("commands",),
    "serve": ("web_commands",),
    "stats": ("commands",),
}


class _CommandsOnDemand(click.Group):
    """The top-level group: a command is looked up by name in `_COMMAND_MODULES`, whose
    modules add it to the group when imported."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in _COMMAND_MODULES.get(cmd_name, ()):
            importlib.import_module(f"monitor.cli.{module}")
        return super().get_command(ctx, cmd_name)


@click.group(cls=_CommandsOnDemand, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help=CONFIG_HELP)
@click.version_option(package_name="monitor")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """monitor: watch news feeds for Moroccan AI, cyber-security and digital policy."""
    ctx.obj = {"config_path": config_path}


def register_commands() -> click.Group:
    """Import every command module (each adds its commands to `cli`); returns `cli`."""
    for modules in _COMMAND_MODULES.values():
        for module in modules:
            importlib.import_module(f"monitor.cli.{module}")
    return cli


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="monitor", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"monitor: configuration error: {exc}", err=True)
        sys.exit(2)
    except MonitorError as exc:
        click.echo(f"monitor: error ({exc.reason}): {exc}", err=True)
        sys.exit(1)
    except BrokenPipeError:
        sys.exit(0)
    sys.exit(0)
