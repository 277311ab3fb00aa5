"""Progress of a long command on a terminal: a bar (or a count when the total is unknown) and
the figures so far, drawn by rich on standard error.

In: a label, a total (None: unknown), then updates (done, total, figures). Out: a live line on
standard error while the command runs; nothing at all when standard error is not a terminal
or with ``--quiet`` (`quiet_option`), so pipes, logs and cron mail stay clean. Colours follow
``NO_COLOR`` (rich reads it). Log lines written meanwhile go above the bar, not through it.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import TypeVar

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

T = TypeVar("T")


def quiet_option(command: Callable) -> Callable:
    """--quiet: no progress on the terminal (it reaches the command as ``quiet``)."""
    return click.option("--quiet", "-q", "quiet", is_flag=True,
                        help="No progress display (there is none when standard error is not a "
                             "terminal).")(command)


class ProgressLine:
    """A context manager; `update` it as the work goes on."""

    def __init__(self, label: str, total: int | None = None, *, quiet: bool = False) -> None:
        self.label, self.total = label, total
        console = Console(stderr=True)
        self._progress: Progress | None = None
        if not quiet and console.is_terminal:
            counted = MofNCompleteColumn() if total is not None else TextColumn(
                "{task.completed}")
            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), counted,
                TextColumn("{task.fields[figures]}"), TimeElapsedColumn(),
                console=console, transient=False, redirect_stdout=False, redirect_stderr=True)
        self._task: TaskID | None = None
        self._streams: list[tuple[logging.StreamHandler, object]] = []

    def __enter__(self) -> ProgressLine:
        if self._progress is not None:
            before = sys.stderr
            self._progress.start()
            self._task = self._progress.add_task(self.label, total=self.total, figures="")
            self._logs_above(before)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
            for handler, stream in self._streams:
                handler.setStream(stream)

    @property
    def shown(self) -> bool:
        """Whether the line is on screen (standard error a terminal, not quiet)."""
        return self._progress is not None

    def update(self, done: int, total: int | None = None, **figures: int) -> None:
        """`done` of `total` (unchanged when None), and figures shown as "name value"."""
        if self._progress is None or self._task is None:
            return
        shown = "  ".join(f"{name.replace('_', ' ')} {value:,}" for name, value in figures.items())
        self._progress.update(self._task, completed=done, figures=shown,
                              **({"total": total} if total is not None else {}))

    def counting(self, rows: Iterable[T], every: int = 200) -> Iterator[T]:
        """`rows` as they come, the count shown every `every` rows and at the end."""
        count = 0
        for count, row in enumerate(rows, 1):
            if count % every == 0:
                self.update(count)
            yield row
        self.update(count)

    def _logs_above(self, stderr: object) -> None:
        """Log handlers writing to standard error (`stderr`) write through rich's proxy
        (sys.stderr while the bar is live), which prints each line above the bar."""
        for handler in logging.getLogger().handlers:
            if isinstance(handler, logging.StreamHandler) and handler.stream is stderr:
                self._streams.append((handler, handler.setStream(sys.stderr)))
