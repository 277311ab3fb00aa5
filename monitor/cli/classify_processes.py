"""Many files classified by one process a core, their lines printed in the order given.

In: `lines_of` (the lines of a run of files; it raises `click.BadParameter` at an unreadable
file, once the lines before it are out), the paths, the number of processes. Out: the lines,
in order, as one process would print them. The others are forked from this process once it has
loaded the rules, so none compiles or reads them again.

The files are cut into chunks. This process takes chunks from the front, one after the other,
and its lines go out as they come; each forked process takes chunks from the back, keeps its
lines and hands them over in a temporary file when no chunk is left. The two ends meet where the
work splits evenly, however long each file takes and whatever else the machine runs. Taking a
chunk is a lock and two counters in a page the processes share. At an unreadable file, its
process stops with the lines before it and the message; every chunk before it is taken by
someone, so the output is the one of a single process: the lines up to that file, then the
error.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import pickle
import signal
import struct
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import IO

import click

LinesOf = Callable[[Sequence[str]], Iterator[str]]
CHUNK = 16  # files a chunk at most: a claim costs a few microseconds, a short file ~60
_COUNTERS = struct.Struct("qq")  # the next chunk from the front, the end of those left


def lines_in_processes(lines_of: LinesOf, paths: Sequence[str],
                       processes: int) -> Iterator[str]:
    """The lines of `paths`, in order, made by this process and `processes` - 1 forked ones;
    the forked ones are stopped when this generator ends, however it ends."""
    size = max(1, min(CHUNK, len(paths) // (processes * 16)))
    chunks = _Chunks(-(-len(paths) // size))
    children: list[_Child] = []
    try:
        children = [_Child.start(lines_of, paths, size, chunks) for _ in range(processes - 1)]
        while (index := chunks.take(front=True)) is not None:
            yield from lines_of(paths[index * size:(index + 1) * size])
        done: dict[int, tuple[list[str], str | None]] = {}
        for child in children:
            done.update(child.result())
        for index in sorted(done):  # the chunks after the last one taken here, all of them
            lines, failure = done[index]
            if lines:
                yield "\n".join(lines)
            if failure is not None:
                raise click.BadParameter(failure)
    finally:
        for child in children:
            child.stop()
        chunks.close()


class _Chunks:
    """Which chunk is next at each end: two counters in a page of a temporary file that the
    forked processes share, changed under a POSIX record lock on that file (which the system
    releases if its holder dies)."""

    def __init__(self, count: int) -> None:
        self._file = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `close`)
        self._file.write(_COUNTERS.pack(0, count))
        self._file.flush()
        self._shared = mmap.mmap(self._file.fileno(), _COUNTERS.size)

    def take(self, *, front: bool) -> int | None:
        """The next chunk's number from the front or from the back; None when none is left."""
        handle = self._file.fileno()
        fcntl.lockf(handle, fcntl.LOCK_EX)
        try:
            first, end = _COUNTERS.unpack_from(self._shared)
            if first >= end:
                return None
            if front:
                _COUNTERS.pack_into(self._shared, 0, first + 1, end)
                return first
            _COUNTERS.pack_into(self._shared, 0, first, end - 1)
            return end - 1
        finally:
            fcntl.lockf(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        self._shared.close()
        self._file.close()


@dataclass
class _Child:
    """A forked process taking chunks from the back; what it made, {chunk: (lines, message
    of the unreadable file that stopped it, else None)}, pickled into a temporary file that
    this process reads once it has ended."""

    pid: int | None
    output: IO[bytes]

    @classmethod
    def start(cls, lines_of: LinesOf, paths: Sequence[str], size: int,
              chunks: _Chunks) -> _Child:
        output = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `stop`)
        pid = os.fork()
        if pid == 0:  # the forked process: never back into the command, whatever happens
            status = 1
            try:
                pickle.dump(_take_from_back(lines_of, paths, size, chunks), output,
                            protocol=pickle.HIGHEST_PROTOCOL)
                output.flush()
                status = 0
            finally:
                os._exit(status)
        return cls(pid, output)

    def result(self) -> dict[int, tuple[list[str], str | None]]:
        """Waits for the process to end; what it made."""
        _, status = os.waitpid(self.pid, 0)
        self.pid = None
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            raise click.ClickException(
                f"a process classifying files stopped with exit status {code}; the lines "
                "printed are those of the files before the ones it had taken")
        self.output.seek(0)
        return pickle.load(self.output)

    def stop(self) -> None:
        """Kills the process if it still runs; frees its file."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None
        self.output.close()


def _take_from_back(lines_of: LinesOf, paths: Sequence[str], size: int,
                    chunks: _Chunks) -> dict[int, tuple[list[str], str | None]]:
    done: dict[int, tuple[list[str], str | None]] = {}
    while (index := chunks.take(front=False)) is not None:
        lines: list[str] = []
        try:
            for line in lines_of(paths[index * size:(index + 1) * size]):
                lines.append(line)
        except click.BadParameter as exc:
            done[index] = lines, exc.message
            break
        done[index] = lines, None
    return done
