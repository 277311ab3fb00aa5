"""The real `monitor` command line, run in the test process as the console script runs it.

In: the arguments, standard input, environment overrides and the folder to run in. Out: a
`subprocess.CompletedProcess` (exit status, standard output, standard error), as a run of
`python -m monitor` would give. Does I/O: whatever the command does.

`monitor.cli.main` is called with the arguments; its `sys.exit` gives the exit status, and an
exception that escapes it is printed with its traceback and exits 1, as Python would. What a
process would start afresh and leave behind at its exit is set up and undone around the call:
the standard streams and the environment (click's `CliRunner.isolation`), the working folder,
the logging set-up of a new interpreter (no handlers, the root at WARNING: `setup_logging`
configures it as in a new process, and it is undone afterwards), the garbage collector's
settings (`monitor run` and `classify` freeze what start-up made; `run` raises a threshold) and
the database connections the command opened (closed, as at a process's exit). A fork server
the command starts stays up for the next one, as the pool would find it in a long-running
worker.
"""

from __future__ import annotations

import contextlib
import faulthandler
import gc
import logging
import subprocess
import sys
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import Engine, event

from monitor.cli import main


def run_in_process(argv: list[str], *, cwd: Path, input: str = "",
                   env: Mapping[str, str | None] | None = None,
                   timeout: float = 120) -> subprocess.CompletedProcess:
    """`monitor ARGV` in this process; `env` overrides the environment (None removes a key).

    A command still running after `timeout` seconds is a hang: the test run ends there with
    every thread's traceback on standard error (what a subprocess's timeout would have caught),
    rather than waiting for ever."""
    with contextlib.ExitStack() as stack:
        faulthandler.dump_traceback_later(timeout, exit=True)
        stack.callback(faulthandler.cancel_dump_traceback_later)
        stdout, stderr, _ = stack.enter_context(
            CliRunner().isolation(input=input, env=dict(env or {})))
        stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(_fresh_logging())
        stack.enter_context(_engines_closed_after())
        stack.enter_context(_collector_as_it_was())
        code = _exit_status(argv)
        sys.stdout.flush()  # the isolation's text wrappers may still hold some of it
        sys.stderr.flush()
        out, err = stdout.getvalue(), stderr.getvalue()
    return subprocess.CompletedProcess(["monitor", *argv], code, out.decode("utf-8"),
                                       err.decode("utf-8", "backslashreplace"))


def _exit_status(argv: list[str]) -> int:
    """Run `main`; the status the process would exit with."""
    try:
        main(argv)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)  # sys.exit("text"): printed, status 1
        return 1
    except Exception:
        traceback.print_exc()  # to the isolated stderr, as the interpreter would
        return 1
    return 0


@contextlib.contextmanager
def _fresh_logging() -> Iterator[None]:
    """Logging as a new interpreter has it (the root logger with no handlers, at WARNING), and
    every logger's level and the root's handlers put back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    loggers = logging.Logger.manager.loggerDict
    levels = {name: logger.level for name, logger in loggers.items()
              if isinstance(logger, logging.Logger)}
    root.handlers = []
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers = handlers
        root.setLevel(level)
        for name, logger in list(loggers.items()):
            if isinstance(logger, logging.Logger):
                logger.setLevel(levels.get(name, logging.NOTSET))


@contextlib.contextmanager
def _collector_as_it_was() -> Iterator[None]:
    """The garbage collector's thresholds put back and its frozen objects thawed afterwards:
    `monitor run` sets them for the rest of its process (`worker.collector`), which here is the
    test run's."""
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


@contextlib.contextmanager
def _engines_closed_after() -> Iterator[None]:
    """Close the connections of every engine that connected meanwhile, as a process's exit
    would (an idle PostgreSQL connection left to the garbage collector counts against the
    server's limit; an SQLite one keeps the file open)."""
    engines: list[Engine] = []

    def connected(connection) -> None:
        if connection.engine not in engines:
            engines.append(connection.engine)

    event.listen(Engine, "engine_connect", connected)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", connected)
        for engine in engines:
            engine.dispose()

