"""A small filesystem mounted on a test's folder, to fill up or to make read-only.

In: a folder and a size. Out: a `SmallFilesystem` mounted there until the `with` block ends.
Does I/O: a tmpfs of that size, or, where mounting a tmpfs is refused, a loop-mounted ext2
image of that size. Mounting needs root (the tests run as root, here and in CI); when neither
can be mounted the test is skipped with the reason.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

_FILLER = ".filler"


@dataclass(frozen=True)
class SmallFilesystem:
    folder: Path

    def fill(self) -> None:
        """Take every free byte (a hidden filler file): the next write meets a full disk."""
        with open(self.folder / _FILLER, "ab", buffering=0) as filler:
            chunk = b"\0" * 4096
            while True:
                try:
                    filler.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
            try:
                os.fsync(filler.fileno())
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise

    def free(self) -> None:
        """Give the space back."""
        (self.folder / _FILLER).unlink(missing_ok=True)

    def read_only(self) -> None:
        _run("mount", "-o", "remount,ro", str(self.folder))

    def read_write(self) -> None:
        _run("mount", "-o", "remount,rw", str(self.folder))


def _run(*command: str) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, check=True)


def _try(*command: str) -> str | None:
    """None if the command succeeded, else what it said."""
    try:
        proc = subprocess.run(command, capture_output=True, text=True)
    except OSError as exc:
        return f"{command[0]}: {exc}"
    return None if proc.returncode == 0 else (proc.stderr.strip() or f"exit {proc.returncode}")


@contextmanager
def small_filesystem(folder: Path, size_kib: int) -> Iterator[SmallFilesystem]:
    """A filesystem of `size_kib` KiB mounted on `folder` (made if missing; what it held is
    hidden until the end)."""
    folder.mkdir(parents=True, exist_ok=True)
    image = folder.parent / f".{folder.name}.img"
    refused = _try("mount", "-t", "tmpfs", "-o", f"size={size_kib}k,mode=0755", "tmpfs",
                   str(folder))
    if refused is not None:
        loop = (_try("mkfs.ext2", "-q", "-F", str(image), f"{size_kib}k")
                or _try("mount", "-o", "loop", str(image), str(folder)))
        if loop is not None:
            image.unlink(missing_ok=True)
            pytest.skip(f"cannot mount a small filesystem: tmpfs: {refused}; loop image: {loop}")
    try:
        yield SmallFilesystem(folder)
    finally:
        if _try("umount", str(folder)) is not None:
            _run("umount", "-l", str(folder))  # a process still holds a file: detach it
        image.unlink(missing_ok=True)
