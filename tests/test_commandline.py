"""The command line run in the test process gives what `python -m monitor` gives: the same exit
status, standard output and standard error (log lines' times and durations aside), for a
success that logs, standard input, a usage error, a configuration error, a command's own error
and an unreachable database named in the environment; and it leaves the process as it found it."""

from __future__ import annotations

import logging
import os
import re
import signal
import threading

import pytest

from tests.commandline import run_in_process
from tests.conftest import Project

# Times and durations differ from one run to the next; nothing else may.
_VARIES = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}|\d+\.\d+s")


def _same_run(project: Project, *args: str, **options) -> None:
    here = project.cli(*args, check=False, **options)
    there = project.cli(*args, check=False, own_process=True, **options)
    assert here.returncode == there.returncode
    assert _VARIES.sub("…", here.stdout) == _VARIES.sub("…", there.stdout)
    assert _VARIES.sub("…", here.stderr) == _VARIES.sub("…", there.stderr)


def test_a_run_that_logs(project: Project) -> None:
    project.cli("init")  # the schema made: the two runs find the same database
    _same_run(project, "run", "--once")


def test_standard_input(project: Project) -> None:
    _same_run(project, "classify", "--json", "-", input="La DGSSI et le maCERT au Maroc.")


@pytest.mark.parametrize("args", [
    ("export", "--format", "xml"),  # a usage error: 2
    ("items", "show", "999"),  # the command's own error: 1
], ids=["usage", "command"])
def test_errors(project: Project, args: tuple[str, ...]) -> None:
    _same_run(project, *args)


def test_a_configuration_error(project: Project) -> None:
    project.config.write_text("schedule:\n  tick: soon\n")
    _same_run(project, "items", "list")


def test_a_database_named_in_the_environment(project: Project) -> None:
    _same_run(project, "stats", env={"MONITOR_DATABASE_URL":
                                     "postgresql+psycopg://nobody:secret@127.0.0.1:9/none"})


def _process_state() -> tuple:
    root = logging.getLogger()
    return (os.getcwd(), dict(os.environ), root.level, list(root.handlers),
            logging.getLogger("httpx").level, signal.getsignal(signal.SIGINT),
            signal.getsignal(signal.SIGTERM), sorted(t.name for t in threading.enumerate()))


def test_the_process_is_left_as_it_was(project: Project) -> None:
    project.write_feeds([{"url": "http://127.0.0.1:9/feed.xml", "name": "Nobody there"}])
    before = _process_state()
    run = project.cli("run", "--once", check=False,
                      env={"MONITOR_STORAGE_DIR": str(project.root / "elsewhere")})
    assert run.returncode == 1  # its only feed failed
    assert _process_state() == before


@pytest.mark.parametrize("how", ["--config", "MONITOR_CONFIG", "default"])
def test_a_missing_configuration_names_both_ways_to_give_one(project: Project, how: str) -> None:
    missing = project.root / "nowhere" / "monitor.yaml"
    argv, env = ["stats"], {"MONITOR_CONFIG": None}
    if how == "--config":
        argv += ["--config", str(missing)]
    elif how == "MONITOR_CONFIG":
        env["MONITOR_CONFIG"] = str(missing)
    done = run_in_process(argv, cwd=project.root / "storage", env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "--config PATH" in done.stderr and "MONITOR_CONFIG" in done.stderr
    shown = (str(missing) if how != "default"
             else str(project.root / "storage" / "config" / "monitor.yaml"))
    assert shown in done.stderr and ("(the default)" in done.stderr) == (how == "default")
