"""Docs that cannot go stale: every command has help and is in the README; .ci/run runs the
README's test command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from monitor.cli import register_commands

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found.extend(_commands(command, full + " "))
        else:
            found.append((full, command))
    return found


COMMANDS = _commands(register_commands())


def test_the_contract_commands_exist() -> None:
    names = {name for name, _ in COMMANDS}
    assert {"init", "run", "classify", "items list", "items show", "feeds list", "stats"} <= names


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_command_has_help_and_is_in_the_readme(name: str, command: click.Command) -> None:
    assert command.help and len(command.help) > 20
    assert f"monitor {name}" in README
    for param in command.params:
        if isinstance(param, click.Option):
            assert param.help, f"{name} {param.opts} has no help"


def test_every_command_is_found_by_its_name() -> None:
    """Commands are loaded on demand, by name: each one defined is found under its name."""
    group = register_commands()
    context = click.Context(group)
    assert sorted(group.commands) == group.list_commands(context)
    assert all(group.get_command(context, name) for name in group.list_commands(context))


def test_ci_runs_the_readme_test_command() -> None:
    blocks = re.findall(r"```sh\n(.*?)\n```", README, re.S)
    test_command = next(b for b in blocks if "pytest" in b)
    assert test_command in (ROOT / ".ci" / "run").read_text()
    run_command = next(b for b in blocks if "monitor run" in b)
    assert "pip install -e ." in run_command


def test_shell_completion_works_as_the_readme_says(tmp_path: Path) -> None:
    from tests.commandline import run_in_process

    section = README[README.index("### Shell completion"):]
    for shell in ("bash", "zsh", "fish"):
        assert f"_MONITOR_COMPLETE={shell}_source monitor" in section
        script = run_in_process([], cwd=tmp_path, env={"_MONITOR_COMPLETE": f"{shell}_source"})
        assert script.returncode == 0 and "_MONITOR_COMPLETE" in script.stdout
    offered = run_in_process([], cwd=tmp_path, env={
        "_MONITOR_COMPLETE": "bash_complete", "COMP_WORDS": "monitor feeds p", "COMP_CWORD": "2"})
    assert offered.stdout.split() == ["plain,poll"]
    # in a process of its own, where no command is loaded before the completion asks
    for words, expected in (("monitor cl", "plain,classify"), ("monitor feeds p", "plain,poll"),
                            ("monitor items s", "plain,search\nplain,show")):
        completed = subprocess.run(
            [sys.executable, "-m", "monitor"], cwd=tmp_path, capture_output=True, text=True,
            check=True, env={**os.environ, "_MONITOR_COMPLETE": "bash_complete",
                             "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)})
        assert completed.stdout.split() == expected.split()
